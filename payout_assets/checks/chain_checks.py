"""`agreement_with_chain`: loaded payouts compared with the Conditional Tokens contract itself.

The subgraph is an indexer of the chain; this check asks the chain. It reads a sample of
the table (this run's rows first, then a random draw), asks the contract for each id's
payout, and compares them exactly, as fractions (a/b = c/d ⇔ a·d = c·b, element by element).
"""

import asyncio
import time

import dagster as dg
from clickhouse_connect.driver.client import Client
from pydantic import Field

from payout_assets import load
from payout_assets.metadata import id_list
from payout_assets.resources.chain import ChainResource
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.conditional_tokens import FAILED, RESOLVED, UNKNOWN, ChainCondition
from payout_assets.core.subgraph import RequestStats
from payout_assets.resources.run_lock import RunLock
from payout_assets.core.statuses import CHAIN_SOURCE
from payout_assets.target_table import table_exists

NAME = "agreement_with_chain"
COUNTS = ("checked", "agreed", "disagreed", "unknown", "failed")


class ChainCheckConfig(dg.Config):
    sample_size: int = Field(default=1000, ge=0, description="Loaded rows compared with the contract; rows this run fetched come first.")


Row = tuple[str, tuple[int, ...], int]


def sample(client: Client, table: str, size: int, since: float) -> tuple[list[Row], int]:
    """Up to `size` loaded rows, those fetched since `since` (unix time) first; and how many of them are.
    Rows the chain itself settled are not compared with it.

    A row's `version` is its fetch time in microseconds: exact where `fetched_at` has seconds.
    """
    if size == 0 or not table_exists(client, table):
        return [], 0
    rows = client.query(
        f"SELECT condition_id, payout_numerators, payout_denominator, version >= {{since:UInt64}} AS fresh "
        f"FROM {table} FINAL WHERE source != {{chain:String}} ORDER BY fresh DESC, rand() LIMIT {{size:UInt32}}",
        parameters={"since": int(since * 1_000_000), "size": size, "chain": CHAIN_SOURCE},
    ).result_rows
    return [(cid, tuple(nums), den) for cid, nums, den, _ in rows], sum(fresh for *_, fresh in rows)


def agrees(row: Row, chain: ChainCondition) -> bool:
    _, numerators, denominator = row
    return len(numerators) == len(chain.numerators) and all(
        ours * chain.denominator == theirs * denominator for ours, theirs in zip(numerators, chain.numerators)
    )


def _vector(numerators: tuple[int, ...], denominator: int) -> str:
    return f"{list(numerators)}/{denominator}"


def compare(rows: list[Row], on_chain: dict[str, ChainCondition]) -> dict[str, list[str]]:
    """Each sampled id sorted into agreed / disagreed / unknown / failed, with what disagreed."""
    found: dict[str, list[str]] = {name: [] for name in COUNTS[1:]}
    for row in rows:
        chain = on_chain[row[0]]
        if chain.state == RESOLVED and agrees(row, chain):
            found["agreed"].append(row[0])
        elif chain.state == UNKNOWN:
            found["unknown"].append(row[0])
        elif chain.state == FAILED:
            found["failed"].append(f"{row[0]}: {chain.reason}")
        else:
            theirs = _vector(chain.numerators, chain.denominator) if chain.state == RESOLVED else chain.state
            found["disagreed"].append(f"{row[0]}: table {_vector(row[1], row[2])}, chain {theirs}")
    return found


def skipped() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=NAME,
        passed=True,
        description="Skipped by configuration: the chain source is off (POLYGON_RPC_URL is unset).",
        metadata={"status": "skipped by configuration", "chain": "off (POLYGON_RPC_URL is unset)", **{c: 0 for c in COUNTS}},
    )


async def _read(chain: ChainResource, ids: list[str]) -> tuple[dict[str, ChainCondition], RequestStats]:
    async with chain.contract() as ctf:
        return await ctf.conditions(ids)


@dg.asset_check(asset=load.SPEC.key, name=NAME, description="A sample of loaded payouts equals the contract's, exactly.", pool="clickhouse")
def agreement_with_chain(
    context: dg.AssetCheckExecutionContext,
    config: ChainCheckConfig,
    clickhouse: ClickHouseResource,
    chain: ChainResource,
    run_lock: RunLock,
) -> dg.AssetCheckResult:
    """ERROR when the contract disagrees with a loaded payout; WARN for ids it does not know or could not answer."""
    if not chain.enabled:
        return skipped()
    started = time.monotonic()
    record = context.instance.get_run_record_by_id(context.run.run_id)
    since = record.start_time if record and record.start_time else time.time()
    with clickhouse.get_client() as client:
        rows, fresh = sample(client, clickhouse.layout.reads, config.sample_size, since)
    on_chain, stats = asyncio.run(_read(chain, [row[0] for row in rows])) if rows else ({}, RequestStats())
    found = compare(rows, on_chain)
    counts = {"checked": len(rows), **{name: len(found[name]) for name in COUNTS[1:]}}
    metadata = {
        **counts,
        "sample_size": config.sample_size,
        "from_this_run": fresh,
        "first_disagreements": id_list(found["disagreed"]),
        "first_unknown_ids": id_list(found["unknown"]),
        "first_failed": id_list(found["failed"]),
        "requests": stats.requests,
        "retries": stats.retries,
        "rate_limited": stats.rate_limited,
        "chain": chain.display_url,
        "contract": chain.contract_address,
        "seconds": round(time.monotonic() - started, 2),
    }
    if counts["disagreed"]:
        context.log.error(f"the contract disagrees with {counts['disagreed']} of {counts['checked']} sampled payouts")
        return dg.AssetCheckResult(check_name=NAME, passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata)
    return dg.AssetCheckResult(
        check_name=NAME,
        passed=not counts["unknown"] and not counts["failed"],
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )
