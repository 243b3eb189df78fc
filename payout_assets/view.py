"""`vw_resolutions_truth`: one payout per condition, for the users' P&L queries."""

import dagster as dg
from clickhouse_connect.driver.client import Client

from payout_assets.load import SOURCE, TABLE, resolutions_external_ingest
from payout_assets.resources.clickhouse import ClickHouseResource

VIEW = "cascadian_clean.vw_resolutions_truth"
EXISTING = "default.market_resolutions_final"
VIEW_COLUMNS = (
    "condition_id",
    "payout_numerators",
    "payout_denominator",
    "winning_index",
    "resolved_at",
    "resolution_source",
)

# The two tables differ in names and types, so every column is mapped by hand, once: the
# view and its checks read these. The existing table wins wherever it has a valid payout;
# invalid payouts never reach the view.
VALID_PAYOUT = "payout_denominator > 0 AND arraySum(payout_numerators) > 0"

GOLDSKY_ROWS = f"""
    SELECT condition_id, payout_numerators, payout_denominator, winning_index,
           CAST(resolved_at, 'Nullable(DateTime)') AS resolved_at, '{SOURCE}' AS resolution_source
    FROM {TABLE} FINAL
    WHERE {VALID_PAYOUT}"""

EXISTING_ROWS = f"""
    SELECT lower(toString(condition_id_norm)) AS condition_id,
           CAST(payout_numerators, 'Array(UInt32)') AS payout_numerators,
           toUInt32(payout_denominator) AS payout_denominator,
           toInt32(winning_index) AS winning_index,
           resolved_at,
           toString(source) AS resolution_source
    FROM {EXISTING} FINAL
    WHERE {VALID_PAYOUT}"""


def view_sql(with_existing: bool) -> str:
    if not with_existing:
        return f"CREATE OR REPLACE VIEW {VIEW} AS {GOLDSKY_ROWS}"
    return (
        f"CREATE OR REPLACE VIEW {VIEW} AS WITH existing AS ({EXISTING_ROWS})"
        " SELECT * FROM existing UNION ALL"
        f" SELECT * FROM ({GOLDSKY_ROWS}) WHERE condition_id NOT IN (SELECT condition_id FROM existing)"
    )


def table_exists(client: Client, qualified_name: str) -> bool:
    database, name = qualified_name.split(".")
    return bool(client.command("EXISTS TABLE {db:Identifier}.{name:Identifier}", parameters={"db": database, "name": name}))


@dg.asset(
    deps=[resolutions_external_ingest],
    group_name="payouts",
    kinds={"clickhouse"},
    pool="clickhouse",
)
def vw_resolutions_truth(context: dg.AssetExecutionContext, clickhouse: ClickHouseResource) -> dg.MaterializeResult:
    """The truth view: the users' resolutions first, Goldsky payouts where they have none."""
    with clickhouse.get_client() as client:
        with_existing = table_exists(client, EXISTING)
        if not with_existing:
            context.log.warning(f"{EXISTING} does not exist: the view covers the Goldsky rows alone")
        client.command("CREATE DATABASE IF NOT EXISTS cascadian_clean")
        client.command(view_sql(with_existing))
        by_source = dict(client.query(f"SELECT resolution_source, count() FROM {VIEW} GROUP BY 1").result_rows)
    return dg.MaterializeResult(
        metadata={
            "view": VIEW,
            "rows": sum(by_source.values()),
            "goldsky_rows": by_source.get(SOURCE, 0),
            "existing_rows": sum(by_source.values()) - by_source.get(SOURCE, 0),
            "includes_existing_table": with_existing,
            "rows_by_source": dg.MetadataValue.json({str(k): v for k, v in by_source.items()}),
        }
    )
