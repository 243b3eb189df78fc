"""The chain source's client against the local chain: exact payouts, batches, retries, limits, secrets."""

import asyncio
import random
import time
from collections.abc import Iterator

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from chain_replica import ChainServer, SeededCondition
from payout_assets.resources.chain import ChainResource, _process_limiter
from payout_assets.resources.conditional_tokens import FAILED, RESOLVED, UNKNOWN, UNRESOLVED, ChainCondition
from payout_assets.core.subgraph import RequestStats
from payout_assets.core.redaction import rpc_display_url, rpc_url_secrets
from payout_assets.resources.rate_limiter import START_MARGIN_SECONDS
from subgraph_replica.loop_thread import LoopThread
from subgraph_replica.server import start_site


def _ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(256):064x}" for _ in range(count)]


IDS = _ids(6, seed=3)
SEEDS = [
    SeededCondition(bytes.fromhex(IDS[0]), 2, (1, 0)),
    SeededCondition(bytes.fromhex(IDS[1]), 2, (0, 1)),
    SeededCondition(bytes.fromhex(IDS[2]), 2, (1, 1)),
    SeededCondition(bytes.fromhex(IDS[3]), 3, (0, 2, 1)),
    SeededCondition(bytes.fromhex(IDS[4]), 2),
]  # IDS[5] was never prepared


def fast(url: str, **options) -> ChainResource:
    return ChainResource(rpc_url=url, **{"backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "rate_limit": 1000, **options})


def read(chain: ChainResource, ids: list[str]) -> tuple[dict[str, ChainCondition], RequestStats]:
    async def run():
        async with chain.contract() as ctf:
            return await ctf.conditions(ids)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def chain() -> Iterator[ChainServer]:
    with ChainServer(SEEDS) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(chain: ChainServer) -> Iterator[None]:
    yield
    chain.configure(failing_ids={}, call_error_rate=0.0, max_batch=None, rate_limit=None)
    chain.reset_stats()


def test_every_state_is_read_exactly(chain: ChainServer) -> None:
    conditions, stats = read(fast(chain.url), IDS)
    assert conditions == {
        IDS[0]: ChainCondition(IDS[0], RESOLVED, (1, 0), 1),
        IDS[1]: ChainCondition(IDS[1], RESOLVED, (0, 1), 1),
        IDS[2]: ChainCondition(IDS[2], RESOLVED, (1, 1), 2),
        IDS[3]: ChainCondition(IDS[3], RESOLVED, (0, 2, 1), 3),
        IDS[4]: ChainCondition(IDS[4], UNRESOLVED),
        IDS[5]: ChainCondition(IDS[5], UNKNOWN),
    }
    # two calls per id, then one per slot of each resolved condition
    assert chain.stats()["calls"] == {"eth_call": 2 * 6 + 2 + 2 + 2 + 3}
    assert stats.requests == 2 and stats.retries == 0


def test_batches_never_exceed_the_batch_size(chain: ChainServer) -> None:
    chain.configure(max_batch=5)
    conditions, stats = read(fast(chain.url, batch_size=5), IDS + _ids(12, seed=4))
    assert all(c.state != FAILED for c in conditions.values())
    assert chain.stats()["largest_batch"] == 5
    # 18 ids: 36 calls in 8 batches, then 9 numerator calls in 2
    assert stats.requests == chain.stats()["requests"] == 8 + 2


def test_calls_failing_inside_a_batch_are_retried_alone(chain: ChainServer) -> None:
    chain.configure(failing_ids={IDS[0]: 2, IDS[3]: 1})
    conditions, stats = read(fast(chain.url), IDS)
    assert conditions[IDS[0]] == ChainCondition(IDS[0], RESOLVED, (1, 0), 1)
    assert conditions[IDS[3]].numerators == (0, 2, 1)
    assert chain.stats()["call_errors"] == 3
    assert stats.retries >= 1


def test_a_call_that_keeps_failing_fails_its_id_alone(chain: ChainServer) -> None:
    chain.configure(failing_ids={IDS[1]: -1})
    conditions, _ = read(fast(chain.url, max_attempts=3), IDS)
    assert conditions[IDS[1]].state == FAILED
    assert "header not found" in conditions[IDS[1]].reason and "after 3 attempts" in conditions[IDS[1]].reason
    assert {cid: c.state for cid, c in conditions.items() if cid != IDS[1]} == {
        IDS[0]: RESOLVED, IDS[2]: RESOLVED, IDS[3]: RESOLVED, IDS[4]: UNRESOLVED, IDS[5]: UNKNOWN}


def test_a_random_share_of_failing_calls_loses_nothing(chain: ChainServer) -> None:
    chain.configure(call_error_rate=0.3, call_error_seed=5)
    conditions, _ = read(fast(chain.url, batch_size=4, max_attempts=10), IDS)
    assert chain.stats()["call_errors"] > 0
    assert [c.state for c in conditions.values()] == [RESOLVED] * 4 + [UNRESOLVED, UNKNOWN]


def test_the_rate_limit_is_kept_and_a_429_is_waited_out(chain: ChainServer) -> None:
    chain.configure(rate_limit=4, window_seconds=1.0)
    started = time.monotonic()
    conditions, _ = read(fast(chain.url, batch_size=2, rate_limit=4, window_seconds=1.0), IDS)
    assert chain.stats()["rate_limited"] == 0 and chain.stats()["max_in_window"] <= 4
    assert time.monotonic() - started >= 2.0  # 10 requests at 4 per second
    chain.configure(rate_limit=3, window_seconds=1.0)
    eager = fast(chain.url, batch_size=2, rate_limit=99, max_attempts=8)  # a limiter of its own
    conditions, stats = read(eager, IDS)
    assert chain.stats()["rate_limited"] > 0 and stats.rate_limited > 0
    assert all(c.state != FAILED for c in conditions.values())
    # Each 429 widened the limiter's margin: the server's count runs ahead of ours.
    assert _process_limiter(eager.rpc_url, eager.rate_limit, eager.window_seconds).margin_seconds > START_MARGIN_SECONDS


def test_the_chain_source_is_off_without_a_url() -> None:
    chain = ChainResource()
    assert not chain.enabled and "off" in chain.display_url
    with pytest.raises(RuntimeError, match="POLYGON_RPC_URL"):
        read(chain, IDS)


class HostileEndpoint:
    """Answers every batch with whatever `answer(body)` returns, as raw text."""

    def __init__(self, answer) -> None:
        self._answer = answer
        self._loop = LoopThread("hostile-rpc")

    def __enter__(self) -> str:
        async def handle(request: web.Request) -> web.Response:
            return web.Response(text=self._answer(await request.json()), content_type="application/json")

        app = web.Application()
        app.router.add_post("/{path:.*}", handle)
        self._loop.start()
        self._runner, port = self._loop.run(start_site(app, "127.0.0.1", 0))
        return f"http://127.0.0.1:{port}/v2/SECRETKEY12345"

    def __exit__(self, *exc_info: object) -> None:
        self._loop.run(self._runner.cleanup())
        self._loop.stop()


@pytest.mark.parametrize("answer", [
    lambda body: "not json at all",
    lambda body: '{"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": "busy SECRETKEY12345"}}',
    lambda body: "[" + ",".join(f'{{"jsonrpc": "2.0", "id": {c["id"]}, "result": "0xzz"}}' for c in body) + "]",
    lambda body: "[" + ",".join(f'{{"jsonrpc": "2.0", "id": {c["id"]}, "result": "0x{2**200:064x}"}}' for c in body) + "]",
    lambda body: '[{"id": {"a": 1}}, 7, null, "x"]',
    lambda body: "[" + ",".join(f'{{"jsonrpc": "2.0", "id": {c["id"]}, "error": "SECRETKEY12345"}}' for c in body) + "]",
], ids=["not-json", "whole-batch-error", "bad-hex", "impossible-slot-count", "junk-entries", "string-errors"])
def test_hostile_answers_fail_ids_with_a_reason_and_never_leak_the_key(answer) -> None:
    with HostileEndpoint(answer) as url:
        conditions, _ = read(fast(url, max_attempts=2), IDS[:3])
    assert [c.state for c in conditions.values()] == [FAILED] * 3
    for condition in conditions.values():
        assert condition.reason and "SECRETKEY12345" not in condition.reason


def test_an_unreachable_endpoint_fails_its_ids_without_naming_the_key() -> None:
    conditions, _ = read(fast("http://127.0.0.1:9/v3/SECRETKEY12345?apikey=OTHERSECRET1", max_attempts=2), IDS[:2])
    assert [c.state for c in conditions.values()] == [FAILED] * 2
    assert all("SECRET" not in c.reason for c in conditions.values())


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="/?#@:&= "), min_size=6, max_size=40))
def test_display_url_never_shows_a_key_wherever_it_sits(key: str) -> None:
    for url in (f"https://polygon-mainnet.g.alchemy.com/v2/{key}", f"https://rpc.ankr.com/polygon/{key}",
                f"https://node.example/rpc?apikey={key}", f"https://user:{key}@node.example/"):
        assert key not in rpc_display_url(url)
        text = f"cannot reach {url}: refused"
        for secret in rpc_url_secrets(url):
            text = text.replace(secret, "***")
        assert key not in text


def _padded_ones(body: list[dict]) -> str:
    """Every call answered `1`, followed by 2 MB of whitespace: an answer of many chunks."""
    one = "0x" + "0" * 63 + "1"
    return "[" + ",".join(f'{{"jsonrpc": "2.0", "id": {c["id"]}, "result": "{one}"}}' for c in body) + "]" + " " * 2_000_000


def test_a_large_answer_is_read_whole() -> None:
    with HostileEndpoint(_padded_ones) as url:
        conditions, _ = read(fast(url), IDS[:2])
    assert [c.state for c in conditions.values()] == [RESOLVED] * 2
    assert conditions[IDS[0]].numerators == (1,)


def test_an_answer_past_the_bound_is_refused(monkeypatch) -> None:
    monkeypatch.setattr("payout_assets.resources.rpc_client.MAX_BODY_BYTES", 100_000)
    with HostileEndpoint(_padded_ones) as url:
        conditions, _ = read(fast(url, max_attempts=2), IDS[:2])
    assert [c.state for c in conditions.values()] == [FAILED] * 2
    assert "exceeds 100000 bytes" in conditions[IDS[0]].reason


def test_a_day_long_retry_after_fails_the_calls_now_instead_of_stalling(chain: ChainServer) -> None:
    chain.configure(rate_limit=1, window_seconds=86_400.0)
    started = time.monotonic()
    conditions, stats = read(fast(chain.url, rate_limit=100), IDS)
    assert time.monotonic() - started < 10
    assert stats.rate_limited >= 1
    refused = [c for c in conditions.values() if c.state == FAILED]
    assert refused and all("past the bound" in c.reason for c in refused)
