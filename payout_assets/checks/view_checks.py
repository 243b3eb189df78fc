"""Checks on `cascadian_clean.vw_resolutions_truth`: fit for P&L queries, and in agreement."""

from collections.abc import Iterator

import dagster as dg
from clickhouse_connect.driver.client import Client

from payout_assets.checks.outcome import logged
from payout_assets.metadata import id_list
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.run_lock import RunLock
from payout_assets.target_table import table_exists
from payout_assets.view import (
    EXISTING,
    EXISTING_ROWS,
    VIEW,
    goldsky_rows,
    inspect_view,
    payout_fraction,
    vw_resolutions_truth,
)

SPECS = [
    dg.AssetCheckSpec("integration_readiness", asset=vw_resolutions_truth, description="Exact columns, the Goldsky rows, one row per condition."),
    dg.AssetCheckSpec("agreement_with_existing", asset=vw_resolutions_truth, description="Goldsky agrees with market_resolutions_final where both have a payout."),
]


def integration_readiness(client: Client, table: str) -> dg.AssetCheckResult:
    """The published view passes the inspection its staging copy passed before the swap."""
    report = inspect_view(client, VIEW, table)
    return dg.AssetCheckResult(check_name="integration_readiness", passed=not report.problems, metadata=report.metadata)


def agreement_with_existing(client: Client, table: str) -> dg.AssetCheckResult:
    """Payouts compared as exact fractions in Python: the users' may be floats, never truncated."""
    if not table_exists(client, EXISTING):
        return dg.AssetCheckResult(check_name="agreement_with_existing", passed=True, metadata={"compared": 0, "note": f"{EXISTING} does not exist"})
    pairs = client.query(
        "SELECT condition_id, e.payout_numerators, e.payout_denominator, g.payout_numerators, g.payout_denominator "
        f"FROM ({EXISTING_ROWS}) AS e INNER JOIN ({goldsky_rows(table)}) AS g USING (condition_id) ORDER BY condition_id"
    ).result_rows
    disagreements = [row for row in pairs if payout_fraction(row[1], row[2]) != payout_fraction(row[3], row[4])]
    return dg.AssetCheckResult(
        check_name="agreement_with_existing",
        passed=not disagreements,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "compared": len(pairs),
            "disagreements": len(disagreements),
            "first_disagreements": id_list(f"{cid}: existing {en}/{ed}, goldsky {gn}/{gd}" for cid, en, ed, gn, gd in disagreements),
        },
    )


@dg.multi_asset_check(specs=SPECS, pool="clickhouse")
def view_checks(
    context: dg.AssetCheckExecutionContext, clickhouse: ClickHouseResource, run_lock: RunLock
) -> Iterator[dg.AssetCheckResult]:
    """The seed's integration-readiness validation, and agreement between the two sources."""
    table = clickhouse.layout.reads
    with clickhouse.get_client() as client:
        yield from logged(context, [integration_readiness(client, table), agreement_with_existing(client, table)])
