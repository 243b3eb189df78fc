"""The code location: assets, checks, sensor and resources, configured from the environment."""

from collections.abc import Callable

import dagster as dg

from payout_assets import settings
from payout_assets.checks.chain_checks import agreement_with_chain
from payout_assets.checks.view_checks import view_checks
from payout_assets.fetch import goldsky_payouts
from payout_assets.input_ids import missing_condition_ids
from payout_assets.resources.chain import ChainResource
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.goldsky import VARIABLES as GOLDSKY_VARIABLES
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.resources.run_lock import RunLock
from payout_assets.sensor import daily_sensor
from payout_assets.view import vw_resolutions_truth


def make_resources(setting: Callable[[str], object] = settings.for_resource) -> dict[str, dg.ConfigurableResource]:
    """The resources from the settings: as EnvVars for the code location, as values for scripts."""
    files = PayoutFiles(
        input_ids_path=setting("PAYOUT_INPUT_IDS"),
        shards_dir=setting("PAYOUT_SHARDS_DIR"),
        input_sql=setting("PAYOUT_INPUT_SQL"),
    )
    clickhouse = ClickHouseResource(
        url=setting("CLICKHOUSE_URL"),
        cluster=setting("CLICKHOUSE_CLUSTER"),
        table_engine=setting("CLICKHOUSE_TABLE_ENGINE"),
        distributed_table=setting("CLICKHOUSE_DISTRIBUTED_TABLE"),
    )
    return {
        "files": files,
        "goldsky": GoldskyResource(
            api_key=setting("GOLDSKY_API_KEY"),
            history_dir=setting("PAYOUT_SHARDS_DIR"),
            **{field: setting(variable) for field, variable in GOLDSKY_VARIABLES.items()},
        ),
        "clickhouse": clickhouse,
        # The second source: off until POLYGON_RPC_URL is set.
        "chain": ChainResource(
            rpc_url=setting("POLYGON_RPC_URL"),
            contract_address=setting("POLYGON_CTF_ADDRESS"),
            rate_limit=setting("POLYGON_RPC_RATE_LIMIT"),
            batch_size=setting("POLYGON_RPC_BATCH_SIZE"),
            log_block_range=setting("POLYGON_LOG_BLOCK_RANGE"),
            log_start_block=setting("POLYGON_LOG_START_BLOCK"),
        ),
        # Every asset and check holds it: one run at a time per shard and chDB directory, however launched.
        "run_lock": RunLock(files=files, clickhouse=clickhouse),
    }


def build_defs() -> dg.Definitions:
    """The code location as the environment configures it now (tests build it with theirs)."""
    return dg.Definitions(
        assets=[missing_condition_ids, goldsky_payouts, vw_resolutions_truth],
        asset_checks=[agreement_with_chain, view_checks],
        sensors=[daily_sensor(settings.value("PAYOUT_SENSOR_INTERVAL_SECONDS"), settings.value("PAYOUT_RECHECK_HOURS"))],
        resources=make_resources(),
        # One process runs every step in order: one rate limiter, and chDB opened by one step at a time.
        executor=dg.in_process_executor,
    )


defs = build_defs()
