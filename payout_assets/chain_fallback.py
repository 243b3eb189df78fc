"""Ids the subgraph cannot settle, asked of the Conditional Tokens contract itself.

With the chain source on, the ids this run found `not_found`, and its `unresolved` ids while
the subgraph's head is older than `ChainResource.lagging_after_hours`, are read from the
contract. Those it holds resolved become `resolved` rows answered by the chain (`endpoint`
'polygon-ctf', `payout_shape` 'chain'), which the load writes with `source = 'polygon-ctf'`;
the rest keep the subgraph's status, and the daily sensor re-checks them as any other.
"""

import asyncio
import logging
import time
from collections import Counter
from datetime import datetime, timezone

import polars as pl

from payout_assets.core.payouts import MalformedPayout, from_numerators
from payout_assets.resources.chain import ChainResource
from payout_assets.resources.conditional_tokens import RESOLVED as CHAIN_RESOLVED
from payout_assets.resources.conditional_tokens import ChainCondition
from payout_assets.core.subgraph import RequestStats, SubgraphInfo
from payout_assets.fetch_plan import update_statuses
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import (
    CHAIN_SHAPE,
    CHAIN_SOURCE,
    NOT_FOUND,
    RESOLVED,
    SOURCE_OF_ROW,
    UNRESOLVED,
    to_frame,
)



def lagging(info: SubgraphInfo | None, hours: float) -> bool:
    """Whether the subgraph's head block is older than `hours` (unknown: not lagging)."""
    return bool(info and info.block_timestamp and time.time() - info.block_timestamp > hours * 3600)


def _resolved_row(condition: ChainCondition, now: datetime) -> dict | None:
    try:
        payout = from_numerators(list(condition.numerators), condition.denominator)
    except MalformedPayout:
        return None  # legal on chain, but not in the table's UInt32 columns: the subgraph's status stays
    if payout is None:
        return None
    return {
        "condition_id": condition.condition_id, "status": RESOLVED, "fetched_at": now,
        "payout_numerators": list(payout.numerators), "payout_denominator": payout.denominator,
        "winning_index": payout.winning_index, "resolved_at": now, "resolved_at_source": "fetch_time",
        "endpoint": CHAIN_SOURCE, "payout_shape": CHAIN_SHAPE,
    }


def settle_with_chain(chain: ChainResource, files: PayoutFiles, shards: list[str], info: SubgraphInfo | None,
                      since: datetime, log: logging.Logger) -> dict[str, int]:
    """Ask the contract about this run's unsettled ids; returns the counts for the run's metadata."""
    asked_statuses = [NOT_FOUND, UNRESOLVED] if lagging(info, chain.lagging_after_hours) else [NOT_FOUND]
    asked = pl.col("status").is_in(asked_statuses) & (pl.col("fetched_at") >= since)
    candidates = [  # a shard and three columns at a time
        cid for shard in shards
        for cid in files.read("statuses", shard, ["condition_id", "status", "fetched_at"]).filter(asked)["condition_id"]
    ]
    counts = {"chain_asked": len(candidates), "settled_by_chain": 0, "chain_unknown": 0, "chain_failed": 0}
    if not candidates:
        return counts

    async def read() -> tuple[dict[str, ChainCondition], RequestStats]:
        async with chain.contract() as ctf:
            return await ctf.conditions(candidates)

    conditions, stats = asyncio.run(read())
    counts["chain_requests"] = stats.requests
    now = datetime.now(timezone.utc)
    rows = [row for c in conditions.values() if c.state == CHAIN_RESOLVED and (row := _resolved_row(c, now))]
    counts["settled_by_chain"] = len(rows)
    counts["chain_unknown"] = sum(c.state == "unknown" for c in conditions.values())
    counts["chain_failed"] = sum(c.state == "failed" for c in conditions.values())
    settled = to_frame(rows)
    for shard in shards:
        fresh = settled.filter(pl.col("condition_id").str.starts_with(shard))
        if fresh.height:
            update_statuses(files, shard, fresh)
    log.info(
        f"chain: asked about {len(candidates)} {' and '.join(asked_statuses)} ids; {len(rows)} resolved there, "
        f"{counts['chain_unknown']} unknown to the contract, {counts['chain_failed']} without an answer"
    )
    return counts


def settled_by_source(files: PayoutFiles, shards: list[str], since: datetime) -> dict[str, int]:
    """How many ids this run settled, per source: one shard, three columns at a time (all of
    them at once held every status of the input: +400 MB at 1,000,000 ids)."""
    settled: Counter[str] = Counter()
    for shard in shards:
        statuses = files.read("statuses", shard, ["status", "fetched_at", "payout_shape"])
        resolved = statuses.filter((pl.col("status") == RESOLVED) & (pl.col("fetched_at") >= since))
        settled.update(dict(resolved.group_by(SOURCE_OF_ROW.alias("source")).len().iter_rows()))
    return dict(settled)
