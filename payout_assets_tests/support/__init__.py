"""What the tests share: truths, resources on the replica and chDB, runs, and what they wrote.

Fixtures are in conftest.py; processes (servers, the Dagster UI harness) in support/processes.py
and support/dagster_ui.py. Test modules import from here, never from each other.
"""

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from payout_assets.checks.view_checks import view_checks
from payout_assets.definitions import build_defs
from payout_assets.fetch import FETCH_SPEC, goldsky_payouts
from payout_assets.input_ids import missing_condition_ids
from payout_assets import load
from payout_assets.partitions import RANGE_TAGS, SHARDS
from payout_assets.resources.chain import ChainResource
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.resources.run_lock import RunLock
from payout_assets.target_table import TABLE, TableLayout
from payout_assets.view import vw_resolutions_truth
from subgraph_replica import ConditionRow, synthesize_truth

BACKFILL_KEYS = ("missing_condition_ids", "goldsky_payouts", "resolutions_external_ingest")
FULL_RANGE = dict(zip(RANGE_TAGS, (SHARDS[0], SHARDS[-1])))  # the tags of a run over every shard
# The README's backfill command, as a user types it.
BACKFILL_COMMAND = [
    str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "payout_assets",
    "--select", ",".join(BACKFILL_KEYS), "--partition-range", f"{SHARDS[0]}...{SHARDS[-1]}",
]
# The target table as the load creates it with the layout settings unset.
CREATE_TABLE = TableLayout().create_statements()[0]
BACKFILL = [missing_condition_ids, goldsky_payouts]  # goldsky_payouts' op also loads and checks the table


def random_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(256):064x}" for _ in range(count)]


def expected_status(row: ConditionRow | None) -> str:
    if row is None:
        return "not_found"
    return "unresolved" if row.payout_denominator == "0" else "resolved"


@dataclass
class Truth:
    """Input ids and what the replica holds for them (absent ids are `not_found`)."""

    ids: list[str]
    rows: dict[str, ConditionRow]

    def status(self, condition_id: str) -> str:
        return expected_status(self.rows.get(condition_id))

    def resolved(self) -> dict[str, tuple[list[int], int]]:
        return {
            cid: ([int(n) for n in row.payout_numerators], int(row.payout_denominator))
            for cid, row in self.rows.items()
            if row.payout_denominator != "0"
        }


def make_truth(count: int, seed: int = 7) -> Truth:
    ids = random_ids(count, seed)
    return Truth(ids, {row.id[2:]: row for row in synthesize_truth(ids, seed=seed)})


def make_resources(tmp_path: Path, goldsky_url: str, ids: list[str], **goldsky_options) -> dict:
    input_file = tmp_path / "ids.txt"
    input_file.write_text("\n".join(ids) + "\n")
    options = {"rate_limit": 1000, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05, **goldsky_options}
    files = PayoutFiles(input_ids_path=str(input_file), shards_dir=str(tmp_path / "shards"))
    clickhouse = ClickHouseResource(url=f"chdb://{tmp_path / 'chdb'}")
    return {
        "files": files,
        "goldsky": GoldskyResource(url=goldsky_url, **options),
        "clickhouse": clickhouse,
        "chain": ChainResource(),  # off, as by default
        "run_lock": RunLock(files=files, clickhouse=clickhouse),
    }


def location_env(resources: dict) -> dict[str, str]:
    """The environment variables that configure the code location like `resources`."""
    files, goldsky = resources["files"], resources["goldsky"]
    return {
        "PAYOUT_INPUT_IDS": files.input_ids_path,
        "PAYOUT_SHARDS_DIR": files.shards_dir,
        "CLICKHOUSE_URL": resources["clickhouse"].url,
        "GOLDSKY_URL": goldsky.url,
        "GOLDSKY_RATE_LIMIT": str(goldsky.rate_limit),
        "GOLDSKY_BACKOFF_SECONDS": str(goldsky.backoff_seconds),
    }


def code_location(monkeypatch: pytest.MonkeyPatch, resources: dict) -> dg.Definitions:
    """The code location's own definitions, configured through the environment as a deployment is."""
    for name, value in location_env(resources).items():
        monkeypatch.setenv(name, value)
    return build_defs()


def backfill(
    resources: dict, first: str = SHARDS[0], last: str = SHARDS[-1], assets: list = BACKFILL, **run_options
) -> dg.ExecuteInProcessResult:
    """One single-run backfill over a shard range, as `dagster asset materialize --partition-range` runs it."""
    return dg.materialize(
        assets,
        resources=resources,
        tags=dict(zip(RANGE_TAGS, (first, last))),
        raise_on_error=False,
        **run_options,
    )


def fetch_only(resources: dict, **run_options) -> dg.ExecuteInProcessResult:
    """The input and the fetch over every shard, without the load."""
    keys = [missing_condition_ids.key, FETCH_SPEC.key]
    return backfill(resources, assets=[missing_condition_ids, goldsky_payouts], selection=keys, **run_options)


def load_only(resources: dict, **run_options) -> dg.ExecuteInProcessResult:
    """The load alone over every shard, from the Parquet on disk: the README's recovery command."""
    return backfill(resources, assets=[goldsky_payouts], selection=[load.SPEC.key], **run_options)


def materialized(result: dg.ExecuteInProcessResult, key: str) -> dg.AssetMaterialization:
    """The run's first materialization of the asset `key` (goldsky_payouts' op materializes two)."""
    return next(event.materialization for event in result.get_asset_materialization_events()
                if event.materialization.asset_key == dg.AssetKey(key))


def build_view(resources: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize([vw_resolutions_truth, view_checks], resources=resources, raise_on_error=False)


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    """Check name → its evaluation in this run."""
    return {
        event.asset_check_evaluation_data.check_name: event.asset_check_evaluation_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {name: e.severity.value for name, e in check_results(result).items() if not e.passed}


def log_messages(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    """The run's log lines, as the UI and the terminal show them."""
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


def query(resources: dict, sql: str) -> list[tuple]:
    with resources["clickhouse"].get_client() as client:
        return client.query(sql).result_rows


def statuses(resources: dict) -> dict[str, str]:
    frame = pl.concat([resources["files"].read("statuses", shard) for shard in SHARDS])
    assert frame["condition_id"].is_unique().all()
    return dict(zip(frame["condition_id"], frame["status"].cast(pl.String)))


def table_contents(resources: dict) -> dict[str, tuple]:
    rows = query(resources, f"SELECT condition_id, payout_numerators, payout_denominator, winning_index, resolved_at, resolved_at_source FROM {TABLE} FINAL")
    return {row[0]: row[1:] for row in rows}
