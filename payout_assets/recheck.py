"""Re-checking unsettled ids through graph-node's `_change_block` filter.

A plain re-check costs one request per 1,000 ids, every day, for every market still
open. Asking which conditions changed since the block of the last answer costs one
request per 1,000 *changes*; an id that did not change keeps its status, now confirmed
as of the feed's block. Every page of the feed reads that one block, so a change made while
the feed is read lies after it and the next feed sees it. Only answers from this endpoint
and payout shape can be confirmed this way. The feed is used only when it is cheaper, and
abandoned for the plain re-check as soon as it is not (or the endpoint cannot answer it).
"""

import logging
from datetime import datetime, timezone

import polars as pl

from payout_assets.fetch_plan import ShardFetch, batches
from payout_assets.core.subgraph import BatchAnswer, SubgraphInfo
from payout_assets.resources.goldsky_client import GoldskyClient
from payout_assets.core.statuses import MALFORMED, NOT_FOUND, STATUS_SCHEMA, UNRESOLVED, classify, to_frame

# Statuses that came from an answer at a known block; a failed id has none.
ANSWERED = (UNRESOLVED, NOT_FOUND, MALFORMED)


def confirmable(previous: pl.DataFrame, ids: list[str], info: SubgraphInfo) -> pl.DataFrame:
    """The statuses among `ids` that this endpoint gave, with this payout shape, at a block the feed can start from."""
    return previous.filter(
        pl.col("condition_id").is_in(ids)
        & pl.col("status").is_in(ANSWERED)
        & pl.col("block_number").is_not_null()
        & (pl.col("block_number") <= info.block_number)
        & (pl.col("endpoint") == info.endpoint)
        & (pl.col("payout_shape") == info.shape.kind)
    )


async def recheck_by_changes(
    client: GoldskyClient,
    info: SubgraphInfo,
    shards: dict[str, ShardFetch],
    plan: dict[str, list[str]],
    log: logging.Logger,
) -> dict[str, list[str]]:
    """Settle what the change feed can, cheaper than a plain re-check; returns the ids left to fetch."""
    answered = {shard: confirmable(shards[shard].previous, ids, info) for shard, ids in plan.items()}
    plain_cost = sum(len(batches(frame["condition_id"].to_list())) for frame in answered.values())
    if not info.supports_change_block or plain_cost < 2:
        return plan
    since = min(frame["block_number"].min() for frame in answered.values() if frame.height)
    feed = await client.changes_since(info.shape.changes_query(), since, info.block_number, max_pages=plain_cost - 1)
    first_shard = shards[min(plan)]
    first_shard.stats.add(feed.stats)  # the feed serves every shard; its cost is counted once
    if feed.failure is not None:
        log.info(f"the change feed since block {since} at block {info.block_number} failed ({feed.failure}): re-checking by id")
        return plan
    if not feed.complete:
        log.info(f"more conditions changed since block {since} than a plain re-check costs: re-checking by id")
        return plan

    now = datetime.now(timezone.utc)
    remaining = {}
    for shard, ids in plan.items():
        rechecked = answered[shard]
        changed = [cid for cid in rechecked["condition_id"] if f"0x{cid}" in feed.entities]
        answer = BatchAnswer(ids=changed, entities=[feed.entities[f"0x{cid}"] for cid in changed], block_number=feed.block_number)
        rows, _ = classify(answer, info.shape, now, client.bounds)
        unchanged = rechecked.filter(~pl.col("condition_id").is_in(changed)).with_columns(
            fetched_at=pl.lit(now, STATUS_SCHEMA["fetched_at"]), block_number=pl.lit(feed.block_number, pl.UInt64)
        )
        shards[shard].record(to_frame(rows, info))
        shards[shard].record(unchanged)
        shards[shard].ids_fetched += rechecked.height
        settled = set(rechecked["condition_id"])
        remaining[shard] = [cid for cid in ids if cid not in settled]
    rechecked_total = sum(frame.height for frame in answered.values())
    log.info(
        f"change feed: {len(feed.entities)} conditions changed since block {since} as of block {feed.block_number}; "
        f"re-checked {rechecked_total} ids with {feed.stats.requests} requests instead of {plain_cost}"
    )
    return remaining
