"""The local subgraph replica must be as strict as graph-node on Goldsky, or tests against it prove nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from subgraph_replica import (
    ConditionRow,
    FaultMix,
    ReplicaServer,
    big_decimal_ratio,
    load_fixture,
    synthesize_truth,
    write_fixture,
)
from subgraph_replica.faults import FaultInjector, SlidingWindow
from subgraph_replica.server import STATE

PNL_FIELDS = "id payoutNumerators payoutDenominator"
BY_IDS = "query($ids: [ID!]!) { conditions(%s where: {id_in: $ids}) { " + PNL_FIELDS + " } }"


def hex_id(n: int) -> str:
    return f"0x{n:064x}"


def resolved(n: int, block: int = 100, numerators: tuple[str, ...] = ("1", "0")) -> ConditionRow:
    denominator = str(sum(int(x) for x in numerators))
    return ConditionRow(hex_id(n), numerators, denominator, "1700000000", block)


def post(url: str, query: str, variables: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, dict[str, str], Any]:
    """POST a GraphQL request; returns status, headers and the decoded (or raw) body."""
    data = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, head, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, dict(error.headers), error.read()
    try:
        return status, head, json.loads(raw)
    except ValueError:
        return status, head, raw.decode()


def admin(base_url: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(base_url + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def pnl() -> Any:
    rows = [resolved(n) for n in range(250)] + [ConditionRow(hex_id(999), (), "0", "", 50)]
    with ReplicaServer(rows) as replica:
        yield replica


def test_default_first_silently_truncates_to_100(pnl: ReplicaServer) -> None:
    ids = [hex_id(n) for n in range(250)]
    _, _, default = post(pnl.url, BY_IDS % "", {"ids": ids})
    _, _, full = post(pnl.url, BY_IDS % "first: 1000,", {"ids": ids})
    assert len(default["data"]["conditions"]) == 100
    assert [c["id"] for c in full["data"]["conditions"]] == ids  # all of them, ordered by id
    _, _, page = post(pnl.url, BY_IDS % "first: 10, skip: 245, orderDirection: desc,", {"ids": ids})
    assert [c["id"] for c in page["data"]["conditions"]] == ids[4::-1]


@pytest.mark.parametrize("args, message", [
    ("first: 1001", "The `first` argument must be between 0 and 1000, but is 1001"),
    ("first: -1", "The `first` argument must be between 0 and 1000, but is -1"),
    ("skip: 5001", "The `skip` argument must be between 0 and 5000, but is 5001"),
])
def test_first_and_skip_bounds_reject_the_query(pnl: ReplicaServer, args: str, message: str) -> None:
    status, _, body = post(pnl.url, "{ conditions(%s) { id } _meta { block { number } } }" % args)
    assert status == 200
    assert body == {"errors": [{"message": message}], "data": None}


def test_ids_match_exactly_and_values_are_strings(pnl: ReplicaServer) -> None:
    exact = hex_id(7)
    variants = [exact, exact.upper(), exact[2:], "0X" + exact[2:]]
    _, _, body = post(pnl.url, BY_IDS % "first: 1000,", {"ids": variants})
    assert body["data"]["conditions"] == [
        {"id": exact, "payoutNumerators": ["1", "0"], "payoutDenominator": "1"}
    ]
    _, _, single = post(pnl.url, '{ condition(id: "%s") { payoutDenominator } }' % hex_id(999))
    assert single == {"data": {"condition": {"payoutDenominator": "0"}}}


def test_invalid_queries_answer_200_with_errors(pnl: ReplicaServer) -> None:
    status, _, body = post(pnl.url, "{ conditions(first: 5) { id resolutionTimestamp } }")
    assert status == 200 and "resolutionTimestamp" in body["errors"][0]["message"]
    status, _, body = post(pnl.url, "{ conditions(where: {id_starts_with: \"0x\"}) { id } }")
    assert status == 200 and body["errors"]


def test_introspection_lists_condition_fields(pnl: ReplicaServer) -> None:
    _, _, body = post(pnl.url, '{ __type(name: "Condition") { fields { name } } }')
    names = [f["name"] for f in body["data"]["__type"]["fields"]]
    assert names == ["id", "payoutNumerators", "payoutDenominator"]


def test_change_block_filter_and_meta(pnl: ReplicaServer) -> None:
    query = "{ conditions(first: 1000, where: {_change_block: {number_gte: %d}}) { id } }"
    assert len(post(pnl.url, query % 100)[2]["data"]["conditions"]) == 250
    assert post(pnl.url, query % 50)[2]["data"]["conditions"][-1]["id"] == hex_id(999)
    assert post(pnl.url, query % 101)[2]["data"]["conditions"] == []
    _, _, meta = post(pnl.url, "{ _meta { block { number timestamp } hasIndexingErrors } }")
    assert meta["data"]["_meta"]["block"]["number"] == 100
    assert abs(meta["data"]["_meta"]["block"]["timestamp"] - time.time()) < 5


def test_stats_count_requested_ids_and_cpu(pnl: ReplicaServer) -> None:
    """1,000 ids per request, as the backfill sends them; the benchmark reports the CPU."""
    pnl.reset_stats()
    ids = [hex_id(n) for n in range(1000)]
    before = pnl.stats()["cpu_seconds"]
    for _ in range(10):
        assert len(post(pnl.url, BY_IDS % "first: 1000,", {"ids": ids})[2]["data"]["conditions"]) == 251
    assert pnl.stats()["cpu_seconds"] > before
    stats = pnl.stats()
    assert (stats["requests"], stats["accepted"], stats["ids_requested"]) == (10, 10, 10_000)
    assert pnl.requested_ids()[hex_id(3)] == 10 and stats["bearer_seen"] is False


def test_main_schema_big_decimal_payouts() -> None:
    rows = [
        ConditionRow(hex_id(1), ("1", "2"), "3", "1650000000", 10),
        ConditionRow(hex_id(2), ("1", "1"), "2", "1650000001", 11),
        ConditionRow(hex_id(3), (), "0", "", 5),
        ConditionRow(hex_id(4), ("abc", "-1"), "7", "1650000002", 12),
    ]
    with ReplicaServer(rows, schema="main") as replica:
        assert replica.url.endswith("/subgraphs/name/main")
        _, _, body = post(replica.url, "{ conditions { id payouts resolutionTimestamp } }")
    assert [(c["payouts"], c["resolutionTimestamp"]) for c in body["data"]["conditions"]] == [
        (["0.3333333333333333333333333333333333", "0.6666666666666666666666666666666667"],
         "1650000000"),
        (["0.5", "0.5"], "1650000001"),
        (None, None),
        (["abc", "-0.1428571428571428571428571428571429"], "1650000002"),
    ]
    assert [big_decimal_ratio(n, d) for n, d in [("1", "1"), ("0", "1"), ("27", "50"), ("10", "1")]] \
        == ["1", "0", "0.54", "10"]


def test_rate_limit_sliding_window() -> None:
    with ReplicaServer([resolved(1)], rate_limit=3, window_seconds=1.0) as replica:
        async def burst() -> list[tuple[int, str | None]]:
            async with aiohttp.ClientSession() as session:
                async def one() -> tuple[int, str | None]:
                    async with session.post(replica.url, json={"query": "{ _meta { deployment } }"}) as r:
                        return r.status, r.headers.get("Retry-After")
                return await asyncio.gather(*(one() for _ in range(8)))

        answers = asyncio.run(burst())
        assert sorted(status for status, _ in answers) == [200] * 3 + [429] * 5
        assert {after for status, after in answers if status == 429} == {"1"}
        time.sleep(1.05)  # the window slides: slots free again, refusals did not count
        assert [post(replica.url, "{ _meta { deployment } }")[0] for _ in range(4)] == [200] * 3 + [429]
        stats = replica.stats()
        assert (stats["accepted"], stats["rate_limited"], stats["max_in_window"]) == (6, 6, 3)
        assert 0 < stats["closest_to_limit_seconds"] < 1.0  # the second round cleared the first's window


def test_the_window_tells_how_close_an_accepted_request_came_to_a_refusal() -> None:
    window = SlidingWindow(limit=3, seconds=10.0)
    for now in (0.0, 1.0, 2.0):
        assert window.try_acquire(now) is None
    assert window.closest_seconds is None  # no request had 3 accepted before it yet
    assert window.try_acquire(10.5) is None and window.closest_seconds == pytest.approx(0.5)  # 10 s after 0.0, +0.5
    assert window.try_acquire(11.25) is None and window.closest_seconds == pytest.approx(0.25)  # after 1.0
    assert window.try_acquire(11.5) is not None  # refused: 3 accepted since 1.5; a refusal clears nothing
    assert window.try_acquire(30.0) is None and window.closest_seconds == pytest.approx(0.25)  # far after 2.0
    window.reset_stats()
    assert window.closest_seconds is None
    assert window.try_acquire(41.3) is None and window.closest_seconds == pytest.approx(20.8)  # after 10.5


def test_fault_mix_and_id_prefixes() -> None:
    rows = [resolved(n) for n in range(4)] + [ConditionRow("0x3" + "a" * 63, ("0", "1"), "1", "1", 1)]
    shard3 = {"ids": ["0x3" + "a" * 63]}
    with ReplicaServer(rows, faults=FaultMix(rate=1.0, kinds=("500",))) as replica:
        assert post(replica.url, BY_IDS % "", shard3)[0] == 500
        replica.configure(faults={"rate": 1.0, "kinds": ["500"], "id_prefixes": ["0x3"]})
        assert post(replica.url, BY_IDS % "", shard3)[0] == 500
        assert post(replica.url, BY_IDS % "", {"ids": [hex_id(1), *shard3["ids"]]})[0] == 200
        replica.configure(faults={"rate": 1.0, "kinds": ["graphql_error"]})
        assert post(replica.url, BY_IDS % "", shard3)[2] == {
            "errors": [{"message": "upstream store error"}], "data": None}
        replica.configure(faults={"rate": 1.0, "kinds": ["429_no_retry_after"]})
        status, headers, _ = post(replica.url, BY_IDS % "", shard3)
        assert status == 429 and "Retry-After" not in headers
        replica.configure(faults={"rate": 1.0, "kinds": ["drop"]})
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            post(replica.url, BY_IDS % "", shard3)
        replica.configure(faults={"rate": 1.0, "kinds": ["slow"], "slow_seconds": 20})
        with pytest.raises(TimeoutError):
            post(replica.url, BY_IDS % "", shard3, timeout=0.3)
        assert replica.stats()["faulted"] == {"500": 2, "graphql_error": 1,
                                              "429_no_retry_after": 1, "drop": 1, "slow": 1}
    # leaving the block did not wait 20 s for the stalled answer (the whole file runs in seconds)


def test_latency_overlaps_concurrent_requests() -> None:
    with ReplicaServer([resolved(1)], latency=0.3) as replica:
        async def five() -> list[int]:
            async with aiohttp.ClientSession() as session:
                async def one() -> int:
                    async with session.post(replica.url, json={"query": "{ _meta { deployment } }"}) as r:
                        return r.status
                return await asyncio.gather(*(one() for _ in range(5)))

        started = time.monotonic()
        assert asyncio.run(five()) == [200] * 5
        assert 0.3 <= time.monotonic() - started < 1.0


def test_fault_draws_are_reproducible_and_near_the_rate() -> None:
    mix = FaultMix(rate=0.3, seed=7)
    first, second = FaultInjector(mix), FaultInjector(mix)
    draws = [first.draw(["0x1"]) for _ in range(2000)]
    assert draws == [second.draw(["0x1"]) for _ in range(2000)]
    assert 0.25 < sum(d is not None for d in draws) / 2000 < 0.35


def test_indexing_errors_withhold_data_and_unrequested_rows_appear() -> None:
    with ReplicaServer([resolved(1)], has_indexing_errors=True) as replica:
        _, _, body = post(replica.url, "{ conditions(first: 5) { id } _meta { block { number } } }")
        assert body == {"errors": [{"message": "indexing_error"}], "data": None}
        assert post(replica.url, "{ _meta { hasIndexingErrors } }")[2]["data"]["_meta"] == {
            "hasIndexingErrors": True}
        admin(replica.base_url, "/_admin/config", {"has_indexing_errors": False, "inject_unrequested": 2})
        rows = post(replica.url, BY_IDS % "first: 1000,", {"ids": [hex_id(1)]})[2]["data"]["conditions"]
        assert len(rows) == 3 and rows[0]["id"] == hex_id(1)


def test_upsert_replaces_rows_and_bumps_meta_block() -> None:
    with ReplicaServer([ConditionRow(hex_id(1), (), "0", "", 10)]) as replica:
        meta = "{ _meta { block { number } } }"
        assert post(replica.url, meta)[2]["data"]["_meta"]["block"]["number"] == 10
        answer = admin(replica.base_url, "/_admin/conditions", {"rows": [
            {"id": hex_id(1), "payout_numerators": ["0", "1"], "payout_denominator": "1",
             "resolution_timestamp": "1700000000", "change_block": 42}]})
        assert answer["block"] == 42
        assert post(replica.url, meta)[2]["data"]["_meta"]["block"]["number"] == 42
        _, _, body = post(replica.url, BY_IDS % "first: 1000,", {"ids": [hex_id(1)]})
        assert body["data"]["conditions"] == [
            {"id": hex_id(1), "payoutNumerators": ["0", "1"], "payoutDenominator": "1"}]


def test_bearer_token_recorded_and_required_when_configured() -> None:
    with ReplicaServer([resolved(1)], require_token="s3cret") as replica:
        assert post(replica.url, "{ _meta { deployment } }")[0] == 401
        assert post(replica.url, "{ _meta { deployment } }", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert replica.stats()["bearer_seen"] is True


def test_corrupt_fixture_roundtrip_returns_duplicates(tmp_path: Path) -> None:
    rows = [ConditionRow(hex_id(5), ("abc", "-1"), "0", "", 1),
            ConditionRow(hex_id(5), ("1" * 40, "0"), "1" * 40, "1700000000", 2)]
    write_fixture(tmp_path / "f.csv", rows)
    assert load_fixture(tmp_path / "f.csv") == rows
    with ReplicaServer(load_fixture(tmp_path / "f.csv")) as replica:
        body = post(replica.url, BY_IDS % "first: 1000,", {"ids": [hex_id(5)]})[2]
    assert [c["payoutNumerators"] for c in body["data"]["conditions"]] == [["abc", "-1"], ["1" * 40, "0"]]


def test_synthesize_truth_is_deterministic_with_expected_shares() -> None:
    ids = [f"{n * 7919:064x}" for n in range(20_000)]
    rows = synthesize_truth(ids, seed=3)
    assert rows == synthesize_truth(ids, seed=3) != synthesize_truth(ids, seed=4)
    done = [r for r in rows if r.payout_denominator != "0"]
    open_ = [r for r in rows if r.payout_denominator == "0"]
    assert 0.71 < len(done) / len(ids) < 0.75 and 0.23 < len(open_) / len(ids) < 0.27
    ties = sum(r.payout_numerators == ("1", "1") for r in done) / len(done)
    assert 0.005 < ties < 0.02
    assert all(r.payout_numerators == () and r.resolution_timestamp == "" for r in open_)
    assert min(r.change_block for r in done) > max(r.change_block for r in open_)
    assert all(1609459200 <= int(r.resolution_timestamp) <= 1780272000 for r in done)
    assert rows[0].id == "0x" + ids[0]


def test_cli_serves_fixture_until_sigterm(tmp_path: Path) -> None:
    write_fixture(tmp_path / "f.csv", [resolved(n) for n in range(3)])
    port_file = tmp_path / "url"
    process = subprocess.Popen(
        [sys.executable, "-m", "subgraph_replica", "--fixture", str(tmp_path / "f.csv"),
         "--rate-limit", "50", "--port-file", str(port_file)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = port_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/subgraphs/name/pnl")
        assert len(post(url, "{ conditions { id } }")[2]["data"]["conditions"]) == 3
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and f"listening on {url}" in out


def test_a_request_is_counted_when_it_arrives_while_another_is_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Goldsky's gateway counts a request when it arrives, whatever graph-node is busy with: the
    replica computes answers off its event loop, which counts the next arrival meanwhile."""
    computing = threading.Event()
    with ReplicaServer([resolved(1)]) as replica:
        executor = replica._app[STATE].executor
        run = executor.run

        def slow_run(*args: Any) -> Any:
            computing.set()
            time.sleep(1.0)  # a heavy query
            return run(*args)

        monkeypatch.setattr(executor, "run", slow_run)
        first = threading.Thread(target=post, args=(replica.url, BY_IDS % "", {"ids": [hex_id(1)]}))
        first.start()
        assert computing.wait(timeout=10)
        second = threading.Thread(target=post, args=(replica.url, BY_IDS % "", {"ids": [hex_id(1)]}))
        second.start()
        deadline = time.monotonic() + 0.5
        while (counted := json.loads(urllib.request.urlopen(replica.base_url + "/_stats", timeout=10).read())["requests"]) < 2:
            assert time.monotonic() < deadline, "the second request was not counted while the first was answered"
            time.sleep(0.01)
        assert first.is_alive()  # still being answered
        first.join()
        second.join()
    assert counted == 2
