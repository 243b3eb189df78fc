"""Re-checks through the change feed, against a fake client: what is confirmed, at which block,
and when the plain re-check by id takes over."""

import asyncio
import logging
from datetime import datetime, timezone

import polars as pl

from payout_assets.core.bounds import AnswerBounds
from payout_assets.fetch_plan import ShardFetch
from payout_assets.recheck import FeedCost, read_feed, settle_from_feed
from payout_assets.core.subgraph import ChangeFeed, PayoutShape, RequestStats, SubgraphInfo
from payout_assets.core.statuses import STATUS_SCHEMA

HEAD = 5_000
INFO = SubgraphInfo("here", PayoutShape("numerators", False), HEAD, None, False, True)
AT = datetime(2026, 11, 1, tzinfo=timezone.utc)


class FakeClient:
    """Answers the change feed with `feed`, and remembers how it was asked."""

    def __init__(self, feed: ChangeFeed) -> None:
        self.feed = feed
        self.asked: list[tuple[int, int, int]] = []

    async def changes_since(self, _query, since: int, at_block: int, max_pages: int) -> ChangeFeed:
        self.asked.append((since, at_block, max_pages))
        return self.feed


def statuses(ids: list[str], block: int, endpoint: str = "here", shape: str = "numerators") -> pl.DataFrame:
    rows = [{"condition_id": cid, "status": "unresolved", "block_number": block, "fetched_at": AT,
             "endpoint": endpoint, "payout_shape": shape} for cid in ids]
    return pl.DataFrame(rows, schema=STATUS_SCHEMA)


def ids(shard: str, count: int) -> list[str]:
    return [f"{shard}{n:063x}" for n in range(count)]


def recheck(client: FakeClient, previous: dict[str, pl.DataFrame], plan: dict[str, list[str]]):
    """As the fetch does it: the cost shard by shard, the feed once, then each shard settled in turn."""
    shards = {shard: ShardFetch(shard, frame) for shard, frame in previous.items()}
    cost = FeedCost()
    for shard, ids in plan.items():
        cost.add(shards[shard].previous, ids, INFO)
    feed = asyncio.run(read_feed(client, INFO, cost, RequestStats(), logging.getLogger("test")))
    remaining = {shard: ids if feed is None else settle_from_feed(feed, shards[shard], ids, INFO, AnswerBounds())
                 for shard, ids in plan.items()}
    answers = {shard: pl.concat(fetch.answers) if fetch.answers else None for shard, fetch in shards.items()}
    return remaining, answers


def resolved_entity(cid: str) -> dict:
    return {"id": f"0x{cid}", "payoutNumerators": ["1", "0"], "payoutDenominator": "1"}


def test_a_complete_feed_settles_every_confirmable_id_as_of_its_one_block():
    a, b = ids("a", 1200), ids("b", 900)
    changed = a[7]
    client = FakeClient(ChangeFeed({f"0x{changed}": resolved_entity(changed)}, HEAD, complete=True))
    new_id = "a" + "f" * 63
    remaining, answers = recheck(client, {"a": statuses(a, 4_000), "b": statuses(b, 3_000)}, {"a": [*a, new_id], "b": b})

    assert client.asked == [(3_000, HEAD, 3 - 1)]  # since the oldest answer, pinned at the head, cheaper than 3 requests
    assert remaining == {"a": [new_id], "b": []}
    rows = {row["condition_id"]: row for row in answers["a"].iter_rows(named=True)}
    assert rows[changed]["status"] == "resolved" and rows[changed]["payout_numerators"] == [1, 0]
    unchanged = [row for cid, row in rows.items() if cid != changed]
    assert {row["block_number"] for row in unchanged} == {HEAD}
    assert all(row["fetched_at"] > AT for row in unchanged)
    assert answers["b"].height == 900 and set(answers["b"]["block_number"]) == {HEAD}


def test_a_failed_or_incomplete_feed_leaves_every_id_to_the_plain_recheck():
    a, b = ids("a", 1000), ids("b", 1000)
    plan = {"a": a, "b": b}
    for feed in (ChangeFeed({}, HEAD, failure="block pruned"), ChangeFeed({}, HEAD, complete=False)):
        remaining, answers = recheck(FakeClient(feed), {"a": statuses(a, 4_000), "b": statuses(b, 4_000)}, plan)
        assert remaining == plan and answers == {"a": None, "b": None}


def test_answers_from_another_endpoint_or_shape_or_a_later_block_are_not_confirmed():
    a, b = ids("a", 1000), ids("b", 1000)
    previous = {
        "a": pl.concat([statuses(a[:400], 4_000), statuses(a[400:700], 4_000, endpoint="elsewhere"),
                        statuses(a[700:], HEAD + 1)]),
        "b": statuses(b, 4_000, shape="decimals"),
    }
    client = FakeClient(ChangeFeed({}, HEAD, complete=True))
    remaining, answers = recheck(client, {**previous, "c": statuses(ids("c", 1000), 4_500)}, {"a": a, "b": b, "c": ids("c", 1000)})
    assert remaining == {"a": a[400:], "b": b, "c": []}
    assert set(answers["a"]["condition_id"]) == set(a[:400])
    assert client.asked[0][0] == 4_000


def test_no_feed_when_a_single_request_rechecks_everything():
    a = ids("a", 1000)
    client = FakeClient(ChangeFeed({}, HEAD, complete=True))
    remaining, _ = recheck(client, {"a": statuses(a, 4_000)}, {"a": a})
    assert client.asked == [] and remaining == {"a": a}
