"""Checks on `cascadian_clean.vw_resolutions_truth`: fit for P&L queries, and in agreement."""

from collections.abc import Iterator

import dagster as dg
from clickhouse_connect.driver.client import Client

from payout_assets.load import SOURCE
from payout_assets.metadata import id_list
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.view import (
    EXISTING,
    EXISTING_ROWS,
    GOLDSKY_ROWS,
    VIEW,
    VIEW_COLUMNS,
    table_exists,
    vw_resolutions_truth,
)

SPECS = [
    dg.AssetCheckSpec("integration_readiness", asset=vw_resolutions_truth, description="Exact columns, the Goldsky rows, one row per condition."),
    dg.AssetCheckSpec("agreement_with_existing", asset=vw_resolutions_truth, description="Goldsky agrees with market_resolutions_final where both have a payout."),
]

# Payouts compared as fractions: a/b == c/d  <=>  a*d == c*b, element by element.
_DISAGREEMENTS = f"""
    SELECT g.condition_id, e.payout_numerators, e.payout_denominator, g.payout_numerators, g.payout_denominator
    FROM ({EXISTING_ROWS}) AS e INNER JOIN ({GOLDSKY_ROWS}) AS g USING (condition_id)
    WHERE length(e.payout_numerators) != length(g.payout_numerators)
       OR NOT arrayAll((x, y) -> toUInt64(x) * g.payout_denominator = toUInt64(y) * e.payout_denominator,
                       e.payout_numerators, g.payout_numerators)
"""


def integration_readiness(client: Client) -> dg.AssetCheckResult:
    if not table_exists(client, VIEW):
        return dg.AssetCheckResult(check_name="integration_readiness", passed=False, metadata={"problems": f"{VIEW} does not exist"})
    columns = [row[0] for row in client.query(f"DESCRIBE TABLE {VIEW}").result_rows]
    if columns != list(VIEW_COLUMNS):  # the seed's check 7 read a column its view never had
        problem = f"columns are {columns}, expected {list(VIEW_COLUMNS)}"
        return dg.AssetCheckResult(check_name="integration_readiness", passed=False, metadata={"problems": problem})
    [(rows, distinct, goldsky_rows)] = client.query(
        f"SELECT count(), uniqExact(condition_id), countIf(resolution_source = '{SOURCE}') FROM {VIEW}"
    ).result_rows
    overridden = f" WHERE condition_id NOT IN (SELECT condition_id FROM ({EXISTING_ROWS}))" if table_exists(client, EXISTING) else ""
    [(expected_goldsky,)] = client.query(f"SELECT count() FROM ({GOLDSKY_ROWS}){overridden}").result_rows
    problems = []
    if rows != distinct:
        problems.append(f"{rows - distinct} condition ids appear more than once")
    if goldsky_rows != expected_goldsky:
        problems.append(f"{goldsky_rows} rows say '{SOURCE}', expected {expected_goldsky}")
    return dg.AssetCheckResult(
        check_name="integration_readiness",
        passed=not problems,
        metadata={"rows": rows, "goldsky_rows": goldsky_rows, "columns": ", ".join(columns), "problems": "; ".join(problems) or "none"},
    )


def agreement_with_existing(client: Client) -> dg.AssetCheckResult:
    if not table_exists(client, EXISTING):
        return dg.AssetCheckResult(check_name="agreement_with_existing", passed=True, metadata={"compared": 0, "note": f"{EXISTING} does not exist"})
    [(compared,)] = client.query(
        f"SELECT count() FROM ({EXISTING_ROWS}) AS e INNER JOIN ({GOLDSKY_ROWS}) AS g USING (condition_id)"
    ).result_rows
    disagreements = client.query(_DISAGREEMENTS).result_rows
    return dg.AssetCheckResult(
        check_name="agreement_with_existing",
        passed=not disagreements,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "compared": compared,
            "disagreements": len(disagreements),
            "first_disagreements": id_list(f"{cid}: existing {en}/{ed}, goldsky {gn}/{gd}" for cid, en, ed, gn, gd in disagreements),
        },
    )


@dg.multi_asset_check(specs=SPECS, pool="clickhouse")
def view_checks(clickhouse: ClickHouseResource) -> Iterator[dg.AssetCheckResult]:
    """The seed's integration-readiness validation, and agreement between the two sources."""
    with clickhouse.get_client() as client:
        yield integration_readiness(client)
        yield agreement_with_existing(client)
