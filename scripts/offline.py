"""`make demo` and `make dev`: the pipeline on embedded defaults, against the local replica.

    python -m scripts.offline demo   # backfill every shard, build the view, print a summary
    python -m scripts.offline dev    # the Dagster UI on the same data and replica
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from payout_assets import settings
from payout_assets.definitions import make_resources
from payout_assets.input_ids import read_input_ids
from payout_assets.load import TABLE
from payout_assets.partitions import SHARDS
from payout_assets.settings import DATA_DIR
from payout_assets.statuses import STATUSES, count_statuses
from payout_assets.view import VIEW
from scripts.demo_data import real_outcome_rows, seed_existing_table, write_demo_fixture
from subgraph_replica.process import replica_process

FIXTURE = DATA_DIR / "subgraph_fixture.csv"
BACKFILL = "missing_condition_ids,goldsky_payouts,resolutions_external_ingest"
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def prepare(resources: dict) -> None:
    """The replica's fixture and the users' existing table, made once."""
    files, clickhouse = resources["files"], resources["clickhouse"]
    if not FIXTURE.exists():
        count = write_demo_fixture(Path(files.input_ids_path), FIXTURE)
        print(f"wrote {FIXTURE.name}: {count} conditions assigned a deterministic truth")
    with clickhouse.get_client() as client:
        seed_existing_table(client, real_outcome_rows(DATA_DIR / "polymarket_resolutions_sample.csv"))


# The run's own INFO lines (progress, counts, warnings) without Dagster's DEBUG step events.
INFO_LOGS = json.dumps({"loggers": {"console": {"config": {"log_level": "INFO"}}}})


def materialize(env: dict[str, str], *selection: str) -> None:
    command = [DAGSTER, "asset", "materialize", "-m", "payout_assets", "--config-json", INFO_LOGS, "--select", *selection]
    subprocess.run(command, env=env, check=True)


def summary(resources: dict, seconds: float) -> str:
    files, clickhouse = resources["files"], resources["clickhouse"]
    parsed = read_input_ids(files, clickhouse)
    statuses = pl.concat([files.read("statuses", shard) for shard in SHARDS])
    counts = count_statuses(statuses)
    with clickhouse.get_client() as client:
        table_rows = client.query(f"SELECT count() FROM {TABLE} FINAL").result_rows[0][0]
        view_rows = client.query(f"SELECT count() FROM {VIEW}").result_rows[0][0]
    lines = [
        ("ids", len(parsed.ids)),
        *((status.replace("_", " "), counts[status]) for status in STATUSES),
        ("invalid lines", parsed.invalid_count),
        ("rows in table", table_rows),
        ("rows in view", view_rows),
        ("seconds", f"{seconds:.1f}"),
    ]
    return "\n".join(f"{name:>14}  {value}" for name, value in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("demo", "dev"))
    mode = parser.parse_args().mode
    resources = make_resources(settings.value)  # values, not EnvVars: this script runs outside Dagster
    prepare(resources)
    with replica_process(FIXTURE) as url:
        env = {**os.environ, "GOLDSKY_URL": url}
        print(f"local subgraph replica: {url}")
        if mode == "dev":
            subprocess.run([DAGSTER, "dev", "--host", "127.0.0.1", "--port", "3000"], env=env)
            return
        started = time.monotonic()
        materialize(env, BACKFILL, "--partition-range", f"{SHARDS[0]}...{SHARDS[-1]}")
        materialize(env, "vw_resolutions_truth")
        print(summary(resources, time.monotonic() - started))


if __name__ == "__main__":
    main()
