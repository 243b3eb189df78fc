"""The graph-node GraphQL client: schema discovery, batched payout queries, retries.

Ids travel only as GraphQL variables, every collection query passes `first`, and every
attempt (retries included) goes through one process-wide rate limiter.
"""

import asyncio
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import (
    TransportError,
    TransportQueryError,
    TransportServerError,
)
from graphql import DocumentNode

from payout_assets.resources.rate_limiter import SlidingWindowLimiter, Slot

MAX_IDS_PER_REQUEST = 1000  # graph-node's ceiling for `first`
RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}

DISCOVERY_QUERY = gql(
    """
    query Discover {
      __type(name: "Condition") { fields { name } }
      filter: __type(name: "Condition_filter") { inputFields { name } }
      _meta { block { number timestamp } hasIndexingErrors }
    }
    """
)


# Discoveries by (endpoint, run id), so a run's fetch reuses its own pre-flight probe.
_DISCOVERED: dict[tuple[str, str], "SubgraphInfo"] = {}


class UnsupportedSubgraph(RuntimeError):
    """The endpoint has no Condition entity with a payout shape this project reads."""


@dataclass(frozen=True)
class PayoutShape:
    """Which payout fields the subgraph's Condition has (found by introspection)."""

    kind: str  # "numerators" (pnl-subgraph) or "decimals" (main subgraph)
    has_resolution_timestamp: bool

    @classmethod
    def from_fields(cls, fields: set[str]) -> "PayoutShape":
        has_time = "resolutionTimestamp" in fields
        if {"payoutNumerators", "payoutDenominator"} <= fields:
            return cls("numerators", has_time)
        if "payouts" in fields:
            return cls("decimals", has_time)
        raise UnsupportedSubgraph(
            "the subgraph's Condition has neither payoutNumerators/payoutDenominator nor "
            f"payouts; its fields are {sorted(fields)}"
        )

    def _fields(self) -> str:
        """The selected fields: from this fixed set, never from input."""
        fields = ["id"]
        fields += ["payoutNumerators", "payoutDenominator"] if self.kind == "numerators" else ["payouts"]
        fields += ["resolutionTimestamp"] if self.has_resolution_timestamp else []
        return " ".join(fields)

    def query(self) -> DocumentNode:
        """Conditions by id, for one batch."""
        return gql(
            "query Payouts($ids: [ID!]!) {"
            f" conditions(first: {MAX_IDS_PER_REQUEST}, where: {{id_in: $ids}}) {{ {self._fields()} }}"
            " _meta { block { number } } }"
        )

    def changes_query(self) -> DocumentNode:
        """One page of the conditions changed since block `$since`, in id order, as of block `$at`.

        Every page of one feed reads the same block (graph-node's time travel), so a change
        made while the pages are read is in none of them and after `$at`: the next feed sees it.
        """
        return gql(
            "query Changes($since: Int!, $after: ID!, $at: Int!) {"
            f" conditions(block: {{number: $at}}, first: {MAX_IDS_PER_REQUEST}, orderBy: id, orderDirection: asc,"
            " where: {_change_block: {number_gte: $since}, id_gt: $after})"
            f" {{ {self._fields()} }} _meta(block: {{number: $at}}) {{ block {{ number }} }} }}"
        )


def endpoint_fingerprint(url: str) -> str:
    """Names an endpoint in stored statuses without storing its URL, which may carry a key."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SubgraphInfo:
    endpoint: str  # endpoint_fingerprint of the URL that answered
    shape: PayoutShape
    block_number: int
    block_timestamp: int | None
    has_indexing_errors: bool
    supports_change_block: bool  # graph-node's `_change_block` filter


@dataclass
class RequestStats:
    """What it cost to get an answer: the numbers the fetch-health check reads."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0

    def add(self, other: "RequestStats") -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.rate_limited += other.rate_limited


@dataclass
class BatchAnswer:
    """The subgraph's answer to one batch, or why there is none after every retry."""

    ids: list[str]
    entities: list[dict[str, Any]] = field(default_factory=list)
    block_number: int | None = None
    error: str | None = None
    stats: RequestStats = field(default_factory=RequestStats)


@dataclass
class ChangeFeed:
    """Conditions changed since a block, by `0x` id, as of block `block_number`."""

    entities: dict[str, dict[str, Any]]
    block_number: int
    stats: RequestStats = field(default_factory=RequestStats)
    complete: bool = False
    failure: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, never shorter than the server asked for."""
        backoff = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return max(backoff * random.uniform(0.5, 1.0), retry_after or 0.0)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class GoldskyClient:
    """One session against one endpoint; use `async with` and share it across batches."""

    def __init__(
        self,
        url: str,
        limiter: SlidingWindowLimiter,
        api_key: str | None = None,
        timeout_seconds: float = 30.0,
        max_in_flight: int = 50,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._timeout_seconds = timeout_seconds
        self._max_in_flight = max_in_flight
        self._limiter = limiter
        self._retry = retry
        self._client: Client | None = None
        self._session: Any = None

    async def __aenter__(self) -> "GoldskyClient":
        # aiohttp's connector needs the running loop, so the transport is built here.
        transport = AIOHTTPTransport(
            url=self._url,
            headers=self._headers,
            timeout=self._timeout_seconds,
            client_session_args={
                # The pool never makes a request wait after the limiter has counted its start.
                "connector": aiohttp.TCPConnector(limit=self._max_in_flight),
                "trace_configs": [self._sent_trace()],
            },
        )
        self._client = Client(transport=transport, execute_timeout=self._timeout_seconds)
        self._in_flight = asyncio.Semaphore(self._max_in_flight)
        self._session = await self._client.connect_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.close_async()

    def _sent_trace(self) -> aiohttp.TraceConfig:
        """Tells the limiter when each request's body actually left (aiohttp holds the
        headers back until the body is written, and a busy event loop may delay both)."""

        async def chunk_sent(_session: object, context: Any, _params: object) -> None:
            if isinstance(context.trace_request_ctx, Slot):
                self._limiter.mark_sent(context.trace_request_ctx)

        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(chunk_sent)
        return trace

    async def discover(self, run_id: str | None = None) -> SubgraphInfo:
        """Payout shape and indexing status, in one request; or, when this run already
        asked (its pre-flight probe), that answer again: the fetch then starts its first
        window a round trip earlier. Another run always asks afresh."""
        if run_id is not None and (self._url, run_id) in _DISCOVERED:
            return _DISCOVERED[self._url, run_id]
        data, _ = await self._execute(DISCOVERY_QUERY, {})
        condition_type = data.get("__type")
        if condition_type is None:
            raise UnsupportedSubgraph("the subgraph has no Condition entity")
        meta = data["_meta"]
        info = SubgraphInfo(
            endpoint=endpoint_fingerprint(self._url),
            shape=PayoutShape.from_fields({f["name"] for f in condition_type["fields"]}),
            block_number=int(meta["block"]["number"]),
            block_timestamp=int(meta["block"]["timestamp"]) if meta["block"].get("timestamp") else None,
            has_indexing_errors=bool(meta.get("hasIndexingErrors")),
            supports_change_block="_change_block" in {f["name"] for f in (data.get("filter") or {}).get("inputFields") or []},
        )
        if run_id is not None:
            _DISCOVERED[self._url, run_id] = info
        return info

    async def fetch_batch(self, query: DocumentNode, ids: Sequence[str]) -> BatchAnswer:
        """Conditions for at most MAX_IDS_PER_REQUEST normalised ids; never raises.

        graph-node matches ids exactly, and stores them lowercase with `0x`.
        """
        if len(ids) > MAX_IDS_PER_REQUEST:
            raise ValueError(f"{len(ids)} ids in one request; graph-node answers at most {MAX_IDS_PER_REQUEST}")
        answer = BatchAnswer(ids=list(ids))
        try:
            data, answer.stats = await self._execute(query, {"ids": [f"0x{cid}" for cid in ids]})
        except (_Retryable, PermanentFailure) as failure:
            answer.error = str(failure)
            answer.stats = getattr(failure, "stats", answer.stats)
            return answer
        answer.entities = data.get("conditions") or []
        answer.block_number = int(data["_meta"]["block"]["number"])
        return answer

    async def changes_since(self, query: DocumentNode, since: int, at_block: int, max_pages: int) -> ChangeFeed:
        """Every condition changed since block `since`, as of block `at_block`; incomplete when
        that takes more than `max_pages` requests, a page fails or the endpoint cannot answer
        at that block (pruned history, no time travel), and then a plain re-check is the way."""
        feed = ChangeFeed(entities={}, block_number=at_block)
        after = ""
        for _ in range(max_pages):
            try:
                data, stats = await self._execute(query, {"since": since, "after": after, "at": at_block})
            except PermanentFailure as failure:
                feed.stats.add(failure.stats)
                feed.failure = str(failure)
                return feed
            feed.stats.add(stats)
            page = data.get("conditions") or []
            feed.entities.update((str(entity.get("id")), entity) for entity in page)
            if len(page) < MAX_IDS_PER_REQUEST:
                feed.complete = True
                return feed
            after = str(page[-1].get("id"))
        return feed

    async def _execute(
        self, query: DocumentNode, variables: dict[str, Any]
    ) -> tuple[dict[str, Any], RequestStats]:
        stats = RequestStats()
        for attempt in range(1, self._retry.max_attempts + 1):
            stats.requests += 1
            stats.retries += attempt > 1
            try:
                return await self._attempt(query, variables), stats
            except _Retryable as failure:
                stats.rate_limited += failure.rate_limited
                if attempt == self._retry.max_attempts:
                    raise _attach(PermanentFailure(f"{failure} (after {attempt} attempts)"), stats)
                if failure.retry_after:
                    self._limiter.pause(failure.retry_after)
                await asyncio.sleep(self._retry.delay(attempt, failure.retry_after))
            except PermanentFailure as failure:
                raise _attach(failure, stats)
        raise AssertionError("unreachable")

    async def _attempt(self, query: DocumentNode, variables: dict[str, Any]) -> dict[str, Any]:
        """One request, with every upstream failure sorted into retryable or permanent."""
        async with self._in_flight:
            slot = await self._limiter.acquire()
            try:
                return await self._session.execute(
                    query, variable_values=variables, extra_args={"trace_request_ctx": slot}
                )
            except TransportServerError as error:
                raise _http_failure(error) from None
            except TransportQueryError as error:
                if _block_unavailable(error.errors):  # asking again will not make it answer
                    raise PermanentFailure(f"GraphQL errors: {_messages(error.errors)}") from None
                raise _Retryable(f"GraphQL errors: {_messages(error.errors)}") from None
            except (TransportError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                raise _Retryable(f"{type(error).__name__}: {error}".rstrip(": ")) from None


class PermanentFailure(Exception):
    """No answer: a non-retryable status, or retries exhausted."""

    stats: RequestStats


def _attach(failure: PermanentFailure, stats: RequestStats) -> PermanentFailure:
    failure.stats = stats
    return failure


def _http_failure(error: TransportServerError) -> Exception:
    code = error.code or 0
    if code not in RETRYABLE_HTTP:
        return PermanentFailure(f"HTTP {code} from the subgraph endpoint")
    headers = getattr(error.__cause__, "headers", None) or {}
    retry_after = headers.get("Retry-After")
    seconds = float(retry_after) if retry_after and retry_after.strip().isdigit() else None
    return _Retryable(f"HTTP {code}", retry_after=seconds, rate_limited=code == 429)


def _block_unavailable(errors: object) -> bool:
    """graph-node's refusal of a `block:` argument: a block it has not indexed yet ("… is
    therefore not yet available") or whose history it pruned ("… is therefore not available")."""
    return "is therefore not" in _messages(errors) and "block number" in _messages(errors)


def _messages(errors: object) -> str:
    if isinstance(errors, list):
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)[:300]
    return str(errors)[:300]

