"""The code location: assets, checks, sensor and resources, configured from the environment."""

import gc
import os
from pathlib import Path

import dagster as dg

from payout_assets.checks.fetch_checks import fetch_checks
from payout_assets.checks.preflight import preflight_checks
from payout_assets.checks.table_checks import table_checks
from payout_assets.checks.view_checks import view_checks
from payout_assets.fetch import goldsky_payouts
from payout_assets.input_ids import missing_condition_ids
from payout_assets.load import resolutions_external_ingest
from payout_assets.resources.clickhouse import CHDB_SCHEME, ClickHouseResource
from payout_assets.resources.goldsky import PUBLIC_PNL_SUBGRAPH, GoldskyResource
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.resources.run_lock import RunLock
from payout_assets.sensor import new_and_unresolved_payouts
from payout_assets.view import vw_resolutions_truth

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_DIR / "data"


def _env(name: str, default: object, kind: type = str) -> object:
    """An EnvVar where the variable is set (so the UI shows its name, not its value), else the default.

    Dagster has no float EnvVar; float settings are not secret, so they are read here.
    """
    if name not in os.environ:
        return default
    if kind is float:
        return float(os.environ[name])
    return dg.EnvVar.int(name) if kind is int else dg.EnvVar(name)


resources = {
    "files": PayoutFiles(
        input_ids_path=_env("PAYOUT_INPUT_IDS", str(DATA_DIR / "condition_ids_missing_api.txt")),
        shards_dir=_env("PAYOUT_SHARDS_DIR", str(DATA_DIR / "shards")),
        input_sql=_env("PAYOUT_INPUT_SQL", None),
    ),
    "goldsky": GoldskyResource(
        url=_env("GOLDSKY_URL", PUBLIC_PNL_SUBGRAPH),
        api_key=_env("GOLDSKY_API_KEY", None),
        rate_limit=_env("GOLDSKY_RATE_LIMIT", 50, int),
        timeout_seconds=_env("GOLDSKY_TIMEOUT_SECONDS", 30.0, float),
        max_attempts=_env("GOLDSKY_MAX_ATTEMPTS", 6, int),
        backoff_seconds=_env("GOLDSKY_BACKOFF_SECONDS", 1.0, float),
    ),
    "clickhouse": ClickHouseResource(url=_env("CLICKHOUSE_URL", f"{CHDB_SCHEME}{DATA_DIR / 'chdb'}")),
}
# Every asset and check holds it: one run at a time per shard and chDB directory, however launched.
resources["run_lock"] = RunLock(files=resources["files"], clickhouse=resources["clickhouse"])

defs = dg.Definitions(
    assets=[missing_condition_ids, goldsky_payouts, resolutions_external_ingest, vw_resolutions_truth],
    asset_checks=[preflight_checks, fetch_checks, table_checks, view_checks],
    sensors=[new_and_unresolved_payouts],
    resources=resources,
    # One process runs every step in order: one rate limiter, and chDB opened by one step at a time.
    executor=dg.in_process_executor,
)

# The objects made while loading the code location live as long as the process: moving
# them out of the collector's sight spares every later collection (the fetch's thousands
# of small answers make many) and the walk through them at exit.
gc.freeze()
