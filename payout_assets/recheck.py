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
from dataclasses import dataclass
from datetime import datetime, timezone

import polars as pl

from payout_assets.core.bounds import AnswerBounds
from payout_assets.fetch_plan import ShardFetch, request_count
from payout_assets.core.subgraph import BatchAnswer, ChangeFeed, RequestStats, SubgraphInfo
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


@dataclass
class FeedCost:
    """What a plain re-check of the confirmable ids would cost, added up shard by shard (one
    shard's statuses in memory at a time), and the oldest block the feed must start from."""

    ids: int = 0
    since: int | None = None

    @property
    def plain_requests(self) -> int:
        return request_count(self.ids)

    def add(self, previous: pl.DataFrame, ids: list[str], info: SubgraphInfo) -> None:
        answered = confirmable(previous, ids, info)
        self.ids += answered.height
        if answered.height:
            oldest = answered["block_number"].min()
            self.since = oldest if self.since is None else min(self.since, oldest)


async def read_feed(
    client: GoldskyClient, info: SubgraphInfo, cost: FeedCost, stats: RequestStats, log: logging.Logger
) -> ChangeFeed | None:
    """The change feed, when it is cheaper than the plain re-check and answers in full; None:
    re-check by id. Its requests are added to `stats` (the feed serves every shard)."""
    if not info.supports_change_block or cost.plain_requests < 2 or cost.since is None:
        return None
    feed = await client.changes_since(info.shape.changes_query(), cost.since, info.block_number, max_pages=cost.plain_requests - 1)
    stats.add(feed.stats)
    if feed.failure is not None:
        log.info(f"the change feed since block {cost.since} at block {info.block_number} failed ({feed.failure}): re-checking by id")
        return None
    if not feed.complete:
        log.info(f"more conditions changed since block {cost.since} than a plain re-check costs: re-checking by id")
        return None
    log.info(
        f"change feed: {len(feed.entities)} conditions changed since block {cost.since} as of block {feed.block_number}; "
        f"re-checking {cost.ids} ids with {feed.stats.requests} requests instead of {cost.plain_requests}"
    )
    return feed


def settle_from_feed(feed: ChangeFeed, fetch: ShardFetch, ids: list[str], info: SubgraphInfo, bounds: AnswerBounds) -> list[str]:
    """Record in the shard what the feed settles of `ids` (a changed id's new answer; an unchanged
    one's status, confirmed as of the feed's block); returns the ids left to fetch."""
    rechecked = confirmable(fetch.previous, ids, info)
    changed = [cid for cid in rechecked["condition_id"] if f"0x{cid}" in feed.entities]
    answer = BatchAnswer(ids=changed, entities=[feed.entities[f"0x{cid}"] for cid in changed], block_number=feed.block_number)
    now = datetime.now(timezone.utc)
    rows, _ = classify(answer, info.shape, now, bounds)
    unchanged = rechecked.filter(~pl.col("condition_id").is_in(changed)).with_columns(
        fetched_at=pl.lit(now, STATUS_SCHEMA["fetched_at"]), block_number=pl.lit(feed.block_number, pl.UInt64)
    )
    fetch.record(to_frame(rows, info))
    fetch.record(unchanged)
    fetch.ids_fetched += rechecked.height
    settled = set(rechecked["condition_id"])
    return [cid for cid in ids if cid not in settled]
