"""The seed's client scenarios, against the replica, plus retries and the `first` regression."""

import asyncio
import json
import logging
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from gql.transport.exceptions import TransportServerError

from payout_assets.core.subgraph import MAX_IDS_PER_REQUEST, ChangeFeed
from payout_assets.resources.goldsky import GoldskyResource, _process_limiter
from payout_assets.resources.goldsky_client import (
    BatchAnswer, PayoutShape, PermanentFailure, RetryPolicy, _http_failure, _Retryable, retry_after_seconds,
)
from payout_assets.resources.rate_limiter import START_MARGIN_SECONDS, SlidingWindowLimiter
from payout_assets.core.statuses import classify
from payout_assets_tests.support import Truth, make_truth
from payout_assets_tests.support.processes import replica_admin
from subgraph_replica import ConditionRow, ReplicaServer, write_fixture
from subgraph_replica.process import replica_process


def fetch(goldsky: GoldskyResource, *batches: list[str]) -> list[BatchAnswer]:
    async def run() -> list[BatchAnswer]:
        async with goldsky.client() as client:
            query = (await client.discover()).shape.query()
            return await asyncio.gather(*(client.fetch_batch(query, batch) for batch in batches))

    return asyncio.run(run())


def statuses(answer: BatchAnswer) -> dict[str, str]:
    rows, _ = classify(answer, PayoutShape("numerators", False), datetime.now(timezone.utc))
    return {row["condition_id"]: row["status"] for row in rows}


def fast(url: str, **options) -> GoldskyResource:
    return GoldskyResource(url=url, **{"backoff_seconds": 0.01, "max_backoff_seconds": 0.05, **options})


@pytest.fixture(scope="module")
def truth_5k() -> Truth:
    return make_truth(5000, seed=11)


def test_five_ids(truth_5k: Truth):
    ids = truth_5k.ids[:5]
    with ReplicaServer(truth_5k.rows.values()) as replica:
        [answer] = fetch(fast(replica.url), ids)
    assert statuses(answer) == {cid: truth_5k.status(cid) for cid in ids}


def test_thousand_ids_in_one_request(truth_5k: Truth):
    ids = truth_5k.ids[:1000]
    with ReplicaServer(truth_5k.rows.values()) as replica:
        [answer] = fetch(fast(replica.url), ids)
        assert replica.stats()["accepted"] == 2  # discovery + one batch
    found = [cid for cid in ids if truth_5k.status(cid) != "not_found"]
    assert len(answer.entities) == len(found) > 100  # more than graph-node's default page
    assert statuses(answer) == {cid: truth_5k.status(cid) for cid in ids}


def test_concurrent_requests_stay_within_the_rate_limit(truth_5k: Truth, tmp_path: Path):
    """Thirty batches at once against a server allowing 10 per second: no 429, ever.

    The server runs in a process of its own, as Goldsky does: in the test's, it shared the
    client's GIL, and under the parallel suite it counted some arrivals more than the limiter's
    margin late (5 and 6 429s in 2 of 3 runs of the fast suite, 2026-12-03)."""
    batches = [truth_5k.ids[i : i + 20] for i in range(0, 600, 20)]
    write_fixture(tmp_path / "truth.csv", truth_5k.rows.values())
    with replica_process(tmp_path / "truth.csv", "--rate-limit", "10", "--window", "1.0") as url:
        started = time.monotonic()
        answers = fetch(fast(url, rate_limit=10, window_seconds=1.0), *batches)
        elapsed = time.monotonic() - started
        stats = replica_admin(url, "/_stats")
    assert stats["rate_limited"] == 0
    assert stats["max_in_window"] <= 10
    assert stats["accepted"] == len(batches) + 1
    assert elapsed >= 2.0  # 31 starts at 10 per second cannot finish sooner
    assert all(answer.error is None for answer in answers)
    merged = {cid: status for answer in answers for cid, status in statuses(answer).items()}
    assert merged == {cid: truth_5k.status(cid) for cid in truth_5k.ids[:600]}


def test_a_query_without_first_loses_rows_and_the_client_does_not(truth_5k: Truth):
    resolved = [cid for cid in truth_5k.ids if truth_5k.status(cid) == "resolved"][:500]
    with ReplicaServer(truth_5k.rows.values()) as replica:
        seed_query = {
            "query": "query($ids: [ID!]!) { conditions(where: {id_in: $ids}) { id } }",
            "variables": {"ids": [f"0x{cid}" for cid in resolved]},
        }
        request = urllib.request.Request(
            replica.url, json.dumps(seed_query).encode(), {"Content-Type": "application/json"}
        )
        seed_rows = json.load(urllib.request.urlopen(request))["data"]["conditions"]
        [answer] = fetch(fast(replica.url), resolved)
    assert len(seed_rows) == 100
    assert len(answer.entities) == 500


def test_retries_429_and_5xx_then_succeeds(truth_5k: Truth):
    ids = truth_5k.ids[:300]
    faults = {"rate": 0.6, "seed": 3, "kinds": ("429", "429_no_retry_after", "500", "502", "503", "504", "graphql_error", "drop")}
    with ReplicaServer(truth_5k.rows.values(), faults=faults) as replica:
        goldsky = fast(replica.url, max_attempts=20)
        answers = fetch(goldsky, *[ids[i : i + 30] for i in range(0, 300, 30)])
        stats = replica.stats()
    assert sum(stats["faulted"].values()) > 0
    assert all(answer.error is None for answer in answers)
    assert sum(answer.stats.retries for answer in answers) > 0
    assert {cid: s for a in answers for cid, s in statuses(a).items()} == {cid: truth_5k.status(cid) for cid in ids}


def test_exhausted_retries_mark_every_id_failed(truth_5k: Truth):
    ids = truth_5k.ids[:10]
    with ReplicaServer(truth_5k.rows.values()) as replica:
        goldsky = fast(replica.url, max_attempts=3)

        async def run() -> BatchAnswer:
            async with goldsky.client() as client:
                query = (await client.discover()).shape.query()
                replica.configure(faults={"rate": 1.0, "seed": 1, "kinds": ("503",)})
                return await client.fetch_batch(query, ids)

        answer = asyncio.run(run())
    assert answer.error == "HTTP 503 (after 3 attempts)"
    assert answer.stats.requests == 3 and answer.stats.retries == 2
    assert set(statuses(answer).values()) == {"failed"}


def test_bearer_token_is_sent_and_a_refusal_is_not_retried(truth_5k: Truth):
    with ReplicaServer(truth_5k.rows.values(), require_token="s3cret") as replica:
        with pytest.raises(PermanentFailure, match="HTTP 401") as refused:
            fetch(fast(replica.url, api_key="wrong"), truth_5k.ids[:3])
        assert replica.stats()["requests"] == 1
        [answer] = fetch(fast(replica.url, api_key="s3cret"), truth_5k.ids[:3])
    assert answer.error is None
    assert "wrong" not in str(refused.value) and "s3cret" not in str(refused.value)


def test_ids_with_payload_text_cannot_change_the_query():
    hostile = '0"]}) { id } _meta { deployment } #'
    rows = [ConditionRow("0x" + "a" * 64, ("1", "0"), "1", "", 1)]
    with ReplicaServer(rows) as replica:
        [answer] = fetch(fast(replica.url), [hostile, "a" * 64])
    assert answer.error is None
    assert [entity["id"] for entity in answer.entities] == ["0x" + "a" * 64]


@pytest.mark.parametrize("schema", ["pnl", "main"])
def test_payout_formats_arrive_exact(schema: str):
    """Integer vectors, 0.54/0.46, 1/3-style values and malformed values, through both schemas."""
    vectors = {
        "a" * 64: (("1", "0"), "1", ([1, 0], 1)),
        "b" * 64: (("27", "23"), "50", ([27, 23], 50)),
        "c" * 64: (("1", "2"), "3", ([1, 2], 3)),
        "d" * 64: (("1", "1", "1"), "3", ([1, 1, 1], 3)),
        "e" * 64: (("abc", "1"), "1", None),
    }
    rows = [ConditionRow(f"0x{cid}", nums, den, "1700000000", 5) for cid, (nums, den, _) in vectors.items()]
    with ReplicaServer(rows, schema=schema) as replica:
        goldsky = fast(replica.url)

        async def run() -> tuple[PayoutShape, BatchAnswer]:
            async with goldsky.client() as client:
                shape = (await client.discover()).shape
                return shape, await client.fetch_batch(shape.query(), list(vectors))

        shape, answer = asyncio.run(run())
    rows_by_id = {row["condition_id"]: row for row in classify(answer, shape, datetime.now(timezone.utc))[0]}
    for cid, (_, _, expected) in vectors.items():
        row = rows_by_id[cid]
        if expected is None:
            assert row["status"] == "malformed" and "abc" in row["reason"]
        else:
            assert (row["payout_numerators"], row["payout_denominator"]) == expected


def test_every_request_tells_the_limiter_when_it_left(truth_5k: Truth, monkeypatch):
    sent = []
    monkeypatch.setattr(SlidingWindowLimiter, "mark_sent", lambda self, slot: sent.append(slot))
    with ReplicaServer(truth_5k.rows.values()) as replica:
        fetch(fast(replica.url), truth_5k.ids[:10], truth_5k.ids[10:20])
        accepted = replica.stats()["accepted"]
    assert len({id(slot) for slot in sent}) == accepted == 3  # every request, once its body left


def test_a_request_awaits_its_answer_from_its_start_until_it_is_answered_or_has_failed(truth_5k: Truth):
    """What the fetch reads to know that the rate limit, not an answer, is what it waits for."""
    ids = truth_5k.ids[:10]
    with ReplicaServer(truth_5k.rows.values(), latency=0.2) as replica:
        goldsky = fast(replica.url, max_attempts=2)

        async def run() -> list[int]:
            async with goldsky.client() as client:
                query = (await client.discover()).shape.query()
                seen = [client.awaiting_answers]
                batch = asyncio.create_task(client.fetch_batch(query, ids))
                while replica.stats()["accepted"] < 2:  # arrived, and held for its latency
                    await asyncio.sleep(0.01)
                seen.append(client.awaiting_answers)
                await batch
                seen.append(client.awaiting_answers)
                replica.configure(faults={"rate": 1.0, "seed": 1, "kinds": ("503",)})
                failed = await client.fetch_batch(query, ids)
                return [*seen, client.awaiting_answers, failed.stats.requests]

        seen = asyncio.run(run())
    assert seen == [0, 1, 0, 0, 2]


def fetch_with_faults(truth: Truth, ids: list[str], kinds: tuple[str, ...], rate: float = 1.0, **options):
    """One batch against a replica serving `kinds` at `rate` (discovery spared); its answer and
    the replica's stats."""
    faults = {"rate": rate, "seed": 5, "kinds": kinds, "id_prefixes": ("0x",), "oversized_bytes": 8 * 2**20}
    with ReplicaServer(truth.rows.values(), faults=faults) as replica:
        [answer] = fetch(fast(replica.url, **options), ids)
        return answer, replica.stats()


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("html_200", "not a GraphQL JSON object"),
        ("oversized", "bound of 1048576 bytes"),
        ("corrupt_answer", ""),
        ("header_echo", "GraphQL errors: bad request, headers were"),
    ],
)
def test_unusable_answers_are_retried_then_failed_with_a_short_reason(truth_5k: Truth, kind: str, reason: str):
    answer, stats = fetch_with_faults(truth_5k, truth_5k.ids[:50], (kind,), max_attempts=4, max_body_bytes=2**20, api_key="gsk-echoed-key")
    assert stats["faulted"] == {kind: 4}
    assert answer.error is not None and reason in answer.error and answer.error.endswith("(after 4 attempts)")
    assert len(answer.error) <= 300 + len(" (after 4 attempts)")
    assert "gsk-echoed-key" not in answer.error and "<html" not in answer.error.lower()
    rows, _ = classify(answer, PayoutShape("numerators", False), datetime.now(timezone.utc))
    assert {row["status"] for row in rows} == {"failed"} and all(len(row["reason"]) <= 300 for row in rows)


def test_each_unusable_answer_costs_one_retry_and_nothing_is_lost(truth_5k: Truth):
    ids = truth_5k.ids[:400]
    kinds = ("html_200", "oversized", "corrupt_answer", "header_echo")
    faults = {"rate": 0.5, "seed": 9, "kinds": kinds, "id_prefixes": ("0x",), "oversized_bytes": 8 * 2**20}
    with ReplicaServer(truth_5k.rows.values(), faults=faults) as replica:
        answers = fetch(fast(replica.url, max_attempts=30, max_body_bytes=2**20), *[ids[i : i + 20] for i in range(0, 400, 20)])
        faulted = replica.stats()["faulted"]
    assert set(faulted) == set(kinds)
    assert all(answer.error is None for answer in answers)
    assert sum(answer.stats.retries for answer in answers) == sum(faulted.values())
    assert {cid: s for a in answers for cid, s in statuses(a).items()} == {cid: truth_5k.status(cid) for cid in ids}


def test_a_retry_after_past_the_bound_fails_the_request_at_once_and_is_logged(truth_5k: Truth, caplog):
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    answer, stats = fetch_with_faults(truth_5k, truth_5k.ids[:10], ("huge_retry_after",), max_retry_after_seconds=60)
    assert time.monotonic() - started < 10
    assert stats["faulted"] == {"huge_retry_after": 1}  # not retried
    assert answer.error == "HTTP 429; Retry-After 86400 s is past the bound"
    assert "wait of 86400 s" in caplog.text and "past the bound of 60 s" in caplog.text


def test_a_retry_after_within_the_bound_is_honoured_and_a_long_wait_is_logged(truth_5k: Truth, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    monkeypatch.setattr("payout_assets.resources.goldsky_client.LOGGED_WAIT_SECONDS", 0.5)  # 5 s in production
    faults = {"rate": 1.0, "seed": 1, "kinds": ("429",), "id_prefixes": ("0x",)}
    with ReplicaServer(truth_5k.rows.values(), faults=faults) as replica:
        started = time.monotonic()
        [answer] = fetch(fast(replica.url, max_attempts=2), truth_5k.ids[:10])
        elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # the replica's Retry-After: 1
    assert answer.error == "HTTP 429 (after 2 attempts)"
    limiter = _process_limiter(replica.url, 50, 10.0, None)
    assert limiter._paused_until >= started + 1.0  # every request of the process waits, not only the refused one
    assert "waiting 1 s before attempt 2: HTTP 429" in caplog.text


def test_each_429_widens_the_rate_limiters_margin(truth_5k: Truth):
    """The server counted a request we thought within the limit: its clock and ours disagree by
    more than the margin, so every later window keeps twice the distance."""
    faults = {"rate": 1.0, "seed": 1, "kinds": ("429_no_retry_after",), "id_prefixes": ("0x",)}
    with ReplicaServer(truth_5k.rows.values(), faults=faults) as replica:
        goldsky = fast(replica.url, max_attempts=3)
        [answer] = fetch(goldsky, truth_5k.ids[:10])
        limiter = _process_limiter(goldsky.url, goldsky.rate_limit, goldsky.window_seconds, goldsky.history_dir)
    assert answer.error == "HTTP 429 (after 3 attempts)"
    assert limiter.margin_seconds == 8 * START_MARGIN_SECONDS  # three refusals


RETRIED = {408, 425, 429, 500, 502, 503, 504}  # as the README's table lists them


@pytest.mark.parametrize("code", [*sorted(RETRIED), 400, 401, 403, 404, 501, 505])
def test_only_statuses_that_may_change_on_their_own_are_retried(code: int):
    failure = _http_failure(TransportServerError(f"HTTP {code}", code))
    assert isinstance(failure, _Retryable) == (code in RETRIED)
    assert isinstance(failure, _Retryable) or str(failure) == f"HTTP {code} from the subgraph endpoint"


def test_the_backoff_doubles_with_jitter_up_to_its_cap_and_never_undercuts_retry_after():
    policy = RetryPolicy(backoff_seconds=1.0, max_backoff_seconds=60.0)
    assert 2.0 <= policy.delay(3, None) <= 4.0
    assert 30.0 <= policy.delay(20, None) <= 60.0
    assert policy.delay(1, 5.0) >= 5.0 and policy.delay(20, 90.0) == 90.0


def test_the_change_feed_reads_pages_until_a_short_one_and_asks_a_pruned_block_once(truth_5k: Truth):
    with ReplicaServer(truth_5k.rows.values()) as replica:

        def feed(max_pages: int) -> ChangeFeed:
            async def run() -> ChangeFeed:
                async with fast(replica.url).client() as client:
                    info = await client.discover()
                    return await client.changes_since(info.shape.changes_query(), 0, info.block_number, max_pages)

            return asyncio.run(run())

        whole, cut = feed(10), feed(1)
        replica.configure(history_from_block=10**12)  # every `block:` argument refused, as for pruned history
        pruned = feed(10)
    assert whole.complete and len(whole.entities) == len(truth_5k.rows) > 2 * MAX_IDS_PER_REQUEST
    assert not cut.complete and len(cut.entities) == MAX_IDS_PER_REQUEST
    assert pruned.failure and not pruned.complete and pruned.stats.requests == 1  # asking again would not help


def test_a_short_wait_is_not_logged(truth_5k: Truth, caplog):
    caplog.set_level(logging.INFO)
    answer, _ = fetch_with_faults(truth_5k, truth_5k.ids[:10], ("500",), max_attempts=3)
    assert answer.error == "HTTP 500 (after 3 attempts)" and "waiting" not in caplog.text


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), (" 7 ", 7.0), ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0), ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
     ("soon", None), ("", None), (None, None), ("-5", None), ("9" * 40, 999999999999.0)],
)
def test_retry_after_is_seconds_or_an_http_date(header, seconds):
    now = datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc)
    assert retry_after_seconds(header, now) == seconds


@pytest.mark.parametrize("schema", ["pnl", "main"])
def test_corrupt_values_end_malformed_and_leave_the_rest_exact(truth_5k: Truth, schema: str):
    ids = truth_5k.ids[:600]
    faults = {"rate": 0.5, "seed": 4, "kinds": ("corrupt_values",), "id_prefixes": ("0x",)}
    with ReplicaServer(truth_5k.rows.values(), schema=schema, faults=faults) as replica:
        goldsky = fast(replica.url)

        async def run() -> tuple[PayoutShape, list[BatchAnswer]]:
            async with goldsky.client() as client:
                shape = (await client.discover()).shape
                return shape, await asyncio.gather(*(client.fetch_batch(shape.query(), ids[i : i + 30]) for i in range(0, 600, 30)))

        shape, answers = asyncio.run(run())
        corrupted = {entity_id[2:] for entity_id in replica.faulted_ids()["corrupt_values"]}
    rows = [row for answer in answers for row in classify(answer, shape, datetime.now(timezone.utc))[0]]
    assert len(corrupted) > 50
    assert {row["condition_id"] for row in rows if row["status"] == "malformed"} == corrupted
    assert all(0 < len(row["reason"]) <= 300 for row in rows if row["status"] == "malformed")
    exact = {row["condition_id"]: (row["status"], row.get("payout_numerators"), row.get("payout_denominator")) for row in rows if row["condition_id"] not in corrupted}
    resolved = truth_5k.resolved()
    assert exact == {cid: (truth_5k.status(cid), *resolved.get(cid, (None, None))) for cid in ids if cid not in corrupted}
