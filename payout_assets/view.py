"""`vw_resolutions_truth`: one payout per condition, for the users' P&L queries.

The view is built under a staging name and inspected there; it replaces the published view
only when it has the right columns, one row per condition and every Goldsky row it should
have. Otherwise the step fails listing the offending ids and the published view stays.
"""

from dataclasses import dataclass, field
from fractions import Fraction

import dagster as dg
from clickhouse_connect.driver.client import Client

from payout_assets import load
from payout_assets.metadata import id_list
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.run_lock import RunLock
from payout_assets.target_table import TableLayout, table_exists

VIEW = "cascadian_clean.vw_resolutions_truth"
STAGING_VIEW = "cascadian_clean.vw_resolutions_truth_staging"
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
# invalid payouts never reach the view. Payouts keep their types (UNION ALL widens them to
# a common type), so a fractional payout is never truncated.
VALID_PAYOUT = "payout_denominator > 0 AND arraySum(payout_numerators) > 0"



def goldsky_rows(table: str) -> str:
    """Our rows in the view's columns, read from `table` (the target or its Distributed table)."""
    return f"""
    SELECT condition_id, payout_numerators, payout_denominator, winning_index,
           CAST(resolved_at, 'Nullable(DateTime)') AS resolved_at, toString(source) AS resolution_source
    FROM {table} FINAL
    WHERE {VALID_PAYOUT}"""


# The users' ids may be FixedString (NUL-padded), upper case or `0x`-prefixed: normalised
# like input ids, so that one condition is one id on both sides.
EXISTING_ROWS = f"""
    SELECT replaceRegexpOne(lower(trimBoth(replaceAll(toString(condition_id_norm), '\\0', ''))), '^0x', '') AS condition_id,
           payout_numerators, payout_denominator,
           toInt32(winning_index) AS winning_index,
           resolved_at,
           toString(source) AS resolution_source
    FROM {EXISTING} FINAL
    WHERE {VALID_PAYOUT}"""


def view_sql(name: str, with_existing: bool, layout: TableLayout) -> str:
    create = f"CREATE OR REPLACE VIEW {name}{layout.on_cluster} AS"
    if not with_existing:
        return f"{create} {goldsky_rows(layout.reads)}"
    return (
        f"{create} WITH existing AS ({EXISTING_ROWS})"
        " SELECT * FROM existing UNION ALL"
        f" SELECT * FROM ({goldsky_rows(layout.reads)}) WHERE condition_id NOT IN (SELECT condition_id FROM existing)"
    )


def payout_fraction(numerators: list, denominator: object) -> tuple[Fraction, ...]:
    """Exact shares: integers and floats (each float is an exact binary fraction) alike."""
    return tuple(Fraction(n) / Fraction(denominator) for n in numerators)


@dataclass
class ViewReport:
    """What a built view holds, and every reason it must not be published."""

    rows: int = 0
    goldsky_rows: int = 0
    existing_rows: int = 0
    problems: list[str] = field(default_factory=list)
    repeated_ids: list[str] = field(default_factory=list)  # one condition, several rows
    contradicting_ids: list[str] = field(default_factory=list)  # ... with different payouts

    @property
    def metadata(self) -> dict:
        return {
            "rows": self.rows,
            "goldsky_rows": self.goldsky_rows,
            "existing_rows": self.existing_rows,
            "problems": "; ".join(self.problems) or "none",
            "repeated_ids": id_list(self.repeated_ids),
            "contradicting_ids": id_list(self.contradicting_ids),
        }


def inspect_view(client: Client, name: str, table: str) -> ViewReport:
    """Columns, one row per condition, and the Goldsky rows the sources say it must hold.

    Rows are told apart by their id, not by `resolution_source`: the users' table may say
    'goldsky-api' itself.
    """
    report = ViewReport()
    if not table_exists(client, name):
        report.problems.append(f"{name} does not exist")
        return report
    columns = [row[0] for row in client.query(f"DESCRIBE TABLE {name}").result_rows]
    if columns != list(VIEW_COLUMNS):  # the seed's check 7 read a column its view never had
        report.problems.append(f"columns are {columns}, expected {list(VIEW_COLUMNS)}")
        return report
    existing_ids = f"(SELECT condition_id FROM ({EXISTING_ROWS}))" if table_exists(client, EXISTING) else "(SELECT '')"
    [(report.rows, report.goldsky_rows)] = client.query(
        f"SELECT count(), countIf(condition_id NOT IN {existing_ids}) FROM {name}"
    ).result_rows
    report.existing_rows = report.rows - report.goldsky_rows
    [(expected_goldsky,)] = client.query(f"SELECT count() FROM ({goldsky_rows(table)}) WHERE condition_id NOT IN {existing_ids}").result_rows
    repeated = client.query(
        f"SELECT condition_id, groupArray(payout_numerators), groupArray(payout_denominator) FROM {name} "
        "GROUP BY condition_id HAVING count() > 1 ORDER BY condition_id"
    ).result_rows
    for condition_id, numerators, denominators in repeated:
        report.repeated_ids.append(condition_id)
        if len({payout_fraction(n, d) for n, d in zip(numerators, denominators)}) > 1:
            report.contradicting_ids.append(condition_id)
    if repeated:
        report.problems.append(
            f"{len(repeated)} condition ids appear more than once, {len(report.contradicting_ids)} of them with different payouts"
        )
    if report.goldsky_rows != expected_goldsky:
        report.problems.append(f"{report.goldsky_rows} Goldsky rows, expected {expected_goldsky}")
    return report


def table_engine(client: Client, qualified_name: str) -> str | None:
    database, name = qualified_name.split(".")
    rows = client.query(
        "SELECT engine FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": database, "name": name},
    ).result_rows
    return rows[0][0] if rows else None


def publish(client: Client, with_existing: bool, layout: TableLayout) -> ViewReport:
    """Build the view under the staging name; swap it in only when its inspection passes."""
    on_cluster = layout.on_cluster
    client.command(f"CREATE DATABASE IF NOT EXISTS cascadian_clean{on_cluster}")
    for name in (VIEW, STAGING_VIEW):  # a user's table of that name is never replaced
        if (engine := table_engine(client, name)) not in (None, "View"):
            return ViewReport(problems=[f"{name} is a {engine} table, not a view; it was left as it is"])
    client.command(view_sql(STAGING_VIEW, with_existing, layout))
    report = inspect_view(client, STAGING_VIEW, layout.reads)
    if report.problems:
        client.command(f"DROP VIEW {STAGING_VIEW}{on_cluster}")
    elif table_exists(client, VIEW):
        client.command(f"EXCHANGE TABLES {STAGING_VIEW} AND {VIEW}{on_cluster}")
        client.command(f"DROP VIEW {STAGING_VIEW}{on_cluster}")  # the previous definition
    else:
        client.command(f"RENAME TABLE {STAGING_VIEW} TO {VIEW}{on_cluster}")
    return report


@dg.asset(
    deps=[load.SPEC.key],
    group_name="payouts",
    kinds={"clickhouse"},
    pool="clickhouse",
)
def vw_resolutions_truth(
    context: dg.AssetExecutionContext, clickhouse: ClickHouseResource, run_lock: RunLock
) -> dg.MaterializeResult:
    """The truth view: the users' resolutions first, Goldsky payouts where they have none."""
    with clickhouse.get_client() as client:
        with_existing = table_exists(client, EXISTING)
        if not with_existing:
            context.log.warning(f"{EXISTING} does not exist: the view covers the Goldsky rows alone")
        report = publish(client, with_existing, clickhouse.layout)
    if report.problems:
        raise dg.Failure(
            description=f"{VIEW} was not replaced: {'; '.join(report.problems)}. "
            f"Ids listed in the metadata; fix them in {EXISTING} and materialize the view again.",
            metadata={"view": VIEW, **report.metadata},
        )
    return dg.MaterializeResult(metadata={"view": VIEW, "includes_existing_table": with_existing, **report.metadata})
