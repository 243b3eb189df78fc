"""`make demo` and `make dev`: the pipeline on embedded defaults, against the local replica.

    python -m scripts.offline demo   # backfill every shard, build the view, print a summary
    python -m scripts.offline dev    # the Dagster UI on the same data and replica
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import polars as pl

from payout_assets import settings
from payout_assets.checks.view_checks import agreement_with_existing
from payout_assets.definitions import make_resources
from payout_assets.input_ids import read_input_ids
from payout_assets import load
from payout_assets.partitions import SHARDS
from payout_assets.settings import DATA_DIR, PROJECT_DIR
from payout_assets.core.statuses import CHAIN_SOURCE, STATUSES, count_statuses
from payout_assets.view import VIEW
from scripts.demo_data import CHAIN_BORN, OVERLAP_SQL, real_outcome_rows, seed_existing_table, write_demo_chain, write_demo_fixture
from subgraph_replica.process import module_process, replica_process

FIXTURE = DATA_DIR / "subgraph_fixture.csv"
DEMO_DIR = DATA_DIR / "demo"
CHAIN_SEEDS, CHAIN_RESOLUTIONS = DEMO_DIR / "chain_seeds.csv", DEMO_DIR / "chain_resolutions.csv"
DAY_TWO_INPUT = DEMO_DIR / "input_ids_day_two.txt"
BACKFILL = "missing_condition_ids,goldsky_payouts,resolutions_external_ingest"
DAGSTER = str(Path(sys.executable).with_name("dagster"))
UI_PORT = 3000
# `dagster asset materialize` (the command DESIGN.md fixes) and `dagster dev` warn on every call
# that the `dg` CLI supersedes them; the demo's operator can do nothing about that.
QUIET_WARNINGS = ",".join(f"ignore:Function `{name}` is superseded" for name in ("asset_materialize_command", "dev_command"))


def prepare(resources: dict) -> None:
    """The replica's fixture and the users' existing table, made once."""
    files, clickhouse = resources["files"], resources["clickhouse"]
    existing = real_outcome_rows(DATA_DIR / "polymarket_resolutions_sample.csv")
    if not all(path.exists() for path in (FIXTURE, CHAIN_SEEDS, CHAIN_RESOLUTIONS, DAY_TWO_INPUT)):
        count = write_demo_fixture(Path(files.input_ids_path), FIXTURE, existing)
        print(f"wrote {FIXTURE.name}: {count} conditions assigned a deterministic truth")
        made = write_demo_chain(Path(files.input_ids_path), FIXTURE, CHAIN_SEEDS, CHAIN_RESOLUTIONS, DAY_TWO_INPUT)
        print(
            f"wrote the local chain's state: the fixture's conditions, {made['absent_resolved_on_chain']} more the "
            f"subgraph lacks, and {made['chain_born']} resolved through the contract (the second day's new ids)"
        )
    with clickhouse.get_client() as client:
        seed_existing_table(client, existing)


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
    table = clickhouse.layout.reads
    with clickhouse.get_client() as client:
        [(table_rows, by_chain, timed_by_chain)] = client.query(
            f"SELECT count(), countIf(source = '{CHAIN_SOURCE}'), countIf(resolved_at_source = 'chain') FROM {table} FINAL"
        ).result_rows
        view_rows = client.query(f"SELECT count() FROM {VIEW}").result_rows[0][0]
        agreement = agreement_with_existing(client, table).metadata  # what the view's check reported
    chain = latest_check_metadata(chain_check_key())
    lines = [
        ("ids", len(parsed.ids)),
        *((status.replace("_", " "), counts[status]) for status in STATUSES),
        ("invalid lines", parsed.invalid_count),
        ("rows in table", table_rows),
        ("rows in view", view_rows),
        ("both sources", f"{agreement['compared'].value} ids, {agreement['disagreements'].value} disagree (agreement_with_existing)"),
        ("chain check", ", ".join(f"{chain.get(name, '?')} {name}" for name in ("checked", "agreed", "disagreed", "unknown")) + " (agreement_with_chain)"),
        ("settled by chain", f"{by_chain} rows with source '{CHAIN_SOURCE}'"),
        ("time from chain", f"{timed_by_chain} of {table_rows} rows ({timed_by_chain / max(table_rows, 1):.1%}) take resolved_at from a ConditionResolution event"),
        ("seconds", f"{seconds:.1f}"),
    ]
    return "\n".join(f"{name:>16}  {value}" for name, value in lines)


def chain_check_key() -> dg.AssetCheckKey:
    return dg.AssetCheckKey(load.SPEC.key, "agreement_with_chain")


def latest_check_metadata(key: dg.AssetCheckKey) -> dict[str, object]:
    """What the check's latest evaluation in the demo's instance reported (its sample is random:
    asking again would draw another)."""
    with dg.DagsterInstance.get() as instance:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key]).get(key)
    evaluation = record.event.dagster_event.event_specific_data if record and record.event else None
    return {name: value.value for name, value in evaluation.metadata.items()} if evaluation else {}


def dev(env: dict[str, str], port: int) -> None:
    """`dagster dev` on the demo's instance, with Dagster's first-visit dialog already dismissed."""
    # From DAGSTER_HOME, so that Dagster does not warn about the project's own dagster.yaml.
    command = [DAGSTER, "dev", "-w", str(PROJECT_DIR / "workspace.yaml"), "--host", "127.0.0.1", "--port", str(port)]
    with subprocess.Popen(command, env=env, cwd=env["DAGSTER_HOME"]) as process:
        try:
            dismiss_first_visit_dialog(process, port)
            if process.wait():
                raise RuntimeError(f"dagster dev exited with status {process.returncode}; its log above says why")
        except KeyboardInterrupt:  # Ctrl-C reaches dagster dev too; let it stop in peace
            process.wait()


def ensure_port_free(port: int) -> None:
    """Refuse a taken port before anything starts: `dagster dev` would start its daemon, fail to
    serve the UI and wait forever."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the webserver binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise RuntimeError(f"port {port} on 127.0.0.1 is in use; choose another with `make dev PORT=...`") from None


def dismiss_first_visit_dialog(process: subprocess.Popen, port: int) -> None:
    """Send what the dialog's Skip button sends, once the webserver answers."""
    mutation = json.dumps({"query": "mutation { setNuxSeen }"}).encode()
    while process.poll() is None:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", mutation, {"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)


def chain_env(url: str) -> dict[str, str]:
    """The chain source pointed at the local chain, which starts at block 0 and has no rate limit of its own."""
    return {"POLYGON_RPC_URL": url, "POLYGON_LOG_START_BLOCK": "0", "POLYGON_LOG_BLOCK_RANGE": "1000", "POLYGON_RPC_RATE_LIMIT": "500"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("demo", "dev"))
    parser.add_argument("--port", type=int, default=UI_PORT, help="the UI's port with dev (default %(default)s)")
    arguments = parser.parse_args()
    mode = arguments.mode
    # The demo's input: the id file, and ids the users' table also has (unless you set a query).
    env = {"PAYOUT_INPUT_SQL": OVERLAP_SQL, **os.environ, "PYTHONWARNINGS": QUIET_WARNINGS}
    try:
        if mode == "dev":
            ensure_port_free(arguments.port)
        # Values, not EnvVars: this script runs outside Dagster.
        resources = make_resources(lambda variable: settings.value(variable, env))
        prepare(resources)
        chain_options = ("--seeds", str(CHAIN_SEEDS), "--resolve", str(CHAIN_RESOLUTIONS), "--max-log-blocks", "1000")
        with replica_process(FIXTURE) as url, module_process("chain_replica", *chain_options) as chain_url:
            print(f"make {mode}: GOLDSKY_URL is the local subgraph replica {url} (a GOLDSKY_URL you set is not used here)")
            print(f"make {mode}: POLYGON_RPC_URL is the local chain {chain_url}, running the Conditional Tokens contract")
            env |= {"GOLDSKY_URL": url, **chain_env(chain_url)}
            if mode == "dev":
                dev({**env, "PAYOUT_INPUT_IDS": str(DAY_TWO_INPUT)}, arguments.port)
                return 0
            started = time.monotonic()
            materialize(env, BACKFILL, "--partition-range", f"{SHARDS[0]}...{SHARDS[-1]}")
            print(f"make demo: the next day, the input gains {CHAIN_BORN} ids resolved on the local chain ({DAY_TWO_INPUT.name})")
            env["PAYOUT_INPUT_IDS"] = str(DAY_TWO_INPUT)
            materialize(env, BACKFILL, "--partition-range", f"{SHARDS[0]}...{SHARDS[-1]}")
            materialize(env, "vw_resolutions_truth")
            resources = make_resources(lambda variable: settings.value(variable, env))
            print(summary(resources, time.monotonic() - started))
    except subprocess.CalledProcessError as failure:
        print(f"make {mode} stopped: the Dagster run failed (exit code {failure.returncode}); its log above says why", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one line for the operator, not a traceback
        print(f"make {mode} stopped: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
