"""A JSON-RPC client for an Ethereum endpoint: batches of calls, retried call by call.

The retry rules are the subgraph client's (`RetryPolicy`, the same retryable HTTP
statuses, `Retry-After` honoured and passed to the shared limiter), applied at two
levels: a batch that gets no usable answer is retried whole; a batch answered with
errors for some calls retries only those calls, in later batches. A call that still
fails after every attempt, or fails in a way no retry can fix (a revert, an unknown
method), comes back with its reason instead of a result. The endpoint's URL, which may
carry an API key, is never written anywhere: messages name `display_url`.
"""

import asyncio
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.redaction import rpc_url_secrets
from payout_assets.core.subgraph import RequestStats
from payout_assets.resources.goldsky_client import RETRYABLE_HTTP, RetryPolicy, retry_after_seconds
from payout_assets.resources.rate_limiter import SlidingWindowLimiter, Slot

MAX_BODY_BYTES = 32 * 1024 * 1024  # an answer larger than this is refused, not buffered
PERMANENT_CODES = {-32600, -32601, -32602, 3}  # bad request, unknown method, bad params, reverted


@dataclass(frozen=True)
class RpcCall:
    method: str
    params: list[Any]


@dataclass
class RpcResult:
    """A call's result, or why there is none after every retry."""

    result: Any = None
    error: str | None = None


class _BatchFailed(Exception):
    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.retry_after = retry_after
        self.rate_limited = rate_limited


async def _bounded_body(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The whole body, refused (connection dropped) as soon as it passes `max_bytes`."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            response.close()
            raise _BatchFailed(f"the answer exceeds {max_bytes} bytes", retryable=True)
    return bytes(body)


class RpcClient:
    """One session against one endpoint; `async with` it and share it across calls.

        async with RpcClient(url, limiter, batch_size=50) as client:
            results, stats = await client.call_all([RpcCall("eth_blockNumber", [])])
    """

    def __init__(self, url: str, limiter: SlidingWindowLimiter, batch_size: int = 50, timeout_seconds: float = 30.0,
                 max_in_flight: int = 8, retry: RetryPolicy = RetryPolicy()) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        self._url = url
        self._limiter = limiter
        self._batch_size = batch_size
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_in_flight = max_in_flight
        self._retry = retry
        # The subgraph client's bounds: reasons short and without the URL's key, bodies and waits bounded.
        self._bounds = AnswerBounds(max_body_bytes=MAX_BODY_BYTES, secrets=tuple(rpc_url_secrets(url)))
        self._ids = itertools.count()

    async def __aenter__(self) -> "RpcClient":
        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(self._chunk_sent)
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, connector=aiohttp.TCPConnector(limit=self._max_in_flight), trace_configs=[trace]
        )
        self._in_flight = asyncio.Semaphore(self._max_in_flight)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._session.close()

    async def _chunk_sent(self, _session: object, context: Any, _params: object) -> None:
        if isinstance(context.trace_request_ctx, Slot):
            self._limiter.mark_sent(context.trace_request_ctx)

    async def call_all(self, calls: Sequence[RpcCall]) -> tuple[list[RpcResult], RequestStats]:
        """Every call's result or reason, in order; never raises for an upstream failure."""
        results = [RpcResult() for _ in calls]
        attempts = [0] * len(calls)
        stats = RequestStats()
        pending = list(range(len(calls)))
        round_number = 0
        while pending:
            round_number += 1
            chunks = [pending[i : i + self._batch_size] for i in range(0, len(pending), self._batch_size)]
            if round_number > 1:
                stats.retries += len(chunks)
                await asyncio.sleep(self._retry.delay(round_number - 1, None))
            outcomes = await asyncio.gather(*(self._send_chunk(calls, chunk, stats) for chunk in chunks))
            pending = []
            for chunk, outcome in zip(chunks, outcomes):
                for index in chunk:
                    attempts[index] += 1
                    answer, retryable = outcome[index]
                    if retryable and attempts[index] < self._retry.max_attempts:
                        pending.append(index)
                    elif isinstance(answer, RpcResult):
                        results[index] = answer
                    else:
                        results[index] = RpcResult(error=f"{answer} (after {attempts[index]} attempts)")
        return results, stats

    async def _send_chunk(self, calls: Sequence[RpcCall], chunk: list[int], stats: RequestStats) -> dict[int, tuple[Any, bool]]:
        """Each call of one batch: (RpcResult, False) when settled, else (reason, retryable)."""
        ids = {next(self._ids): index for index in chunk}
        body = [{"jsonrpc": "2.0", "id": rpc_id, "method": calls[i].method, "params": calls[i].params} for rpc_id, i in ids.items()]
        stats.requests += 1
        try:
            answers = await self._post(body)
        except _BatchFailed as failure:
            stats.rate_limited += failure.rate_limited
            if failure.rate_limited:
                self._limiter.widen_margin()
            wait, bound = failure.retry_after or 0.0, self._bounds.max_retry_after_seconds
            if wait > bound:  # a day-long wait would stall the run: these calls fail now, the next run asks again
                return {i: (f"{failure}; Retry-After {wait:.0f} s is past the bound of {bound:.0f} s", False) for i in chunk}
            if wait:
                self._limiter.pause(wait)
            return {i: (str(failure), failure.retryable) for i in chunk}
        by_id = {a["id"]: a for a in answers if isinstance(a, dict) and isinstance(a.get("id"), int)}
        outcome: dict[int, tuple[Any, bool]] = {}
        for rpc_id, index in ids.items():
            answer = by_id.get(rpc_id)
            if answer is None:
                outcome[index] = ("no answer to this call in the batch", True)
            elif "result" in answer and answer.get("error") is None:
                outcome[index] = (RpcResult(result=answer["result"]), False)
            else:
                error = answer.get("error")
                code = error.get("code") if isinstance(error, dict) else None
                message = self._bounds.reason(str(error.get("message") if isinstance(error, dict) else error))
                reason = f"JSON-RPC error {code}: {message}"
                if code in PERMANENT_CODES or "revert" in message.lower():
                    outcome[index] = (RpcResult(error=reason), False)  # no retry changes this answer
                else:
                    outcome[index] = (reason, True)
        return outcome

    async def _post(self, body: list[dict[str, Any]]) -> list[Any]:
        async with self._in_flight:
            slot = await self._limiter.acquire()
            try:
                async with self._session.post(self._url, json=body, trace_request_ctx=slot) as response:
                    if response.status != 200:
                        raise _BatchFailed(f"HTTP {response.status} from the RPC endpoint", retryable=response.status in RETRYABLE_HTTP,
                                           retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                                           rate_limited=response.status == 429)
                    raw = await _bounded_body(response, self._bounds.max_body_bytes)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                raise _BatchFailed(self._bounds.reason(f"{type(error).__name__}: {error}".rstrip(": ")), retryable=True) from None
        try:
            answers = json.loads(raw)
        except ValueError:
            raise _BatchFailed("the answer is not JSON", retryable=True) from None
        if not isinstance(answers, list):  # one error object for the whole batch
            error = answers.get("error") if isinstance(answers, dict) else answers
            raise _BatchFailed(self._bounds.reason(f"the batch was refused: {str(error)[:200]}"), retryable=True)
        return answers
