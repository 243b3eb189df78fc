"""The graph-node GraphQL client over HTTP: discovery, batched payout queries, retries.

The query shapes and the answers it returns are in core/subgraph.py.

Ids travel only as GraphQL variables, every collection query passes `first`, and every
attempt (retries included) goes through one process-wide rate limiter.
"""

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import aiohttp
from gql import Client
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import (
    TransportError,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from graphql import DocumentNode

from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.subgraph import (
    DISCOVERY_QUERY,
    MAX_IDS_PER_REQUEST,
    BatchAnswer,
    ChangeFeed,
    PayoutShape,
    RequestStats,
    SubgraphInfo,
    UnsupportedSubgraph,
    endpoint_fingerprint,
)
from payout_assets.core.redaction import url_secrets
from payout_assets.resources.rate_limiter import SlidingWindowLimiter, Slot

RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}
LOGGED_WAIT_SECONDS = 5.0  # a wait at least this long is logged with its reason
MAX_BLOCK_NUMBER = 2**63 - 1
T = TypeVar("T")

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


class RefusedAnswer(Exception):
    """An answer dropped unread: a body past `AnswerBounds.max_body_bytes`, or an HTML page (a
    proxy's error page; graph-node answers JSON), which is never read into memory at all."""


def _bounded_response(max_bytes: int) -> type[aiohttp.ClientResponse]:
    """aiohttp's response, reading at most `max_bytes` of a body (declared or streamed)."""

    class BoundedResponse(aiohttp.ClientResponse):
        _refused: RefusedAnswer | None = None  # raised again if gql reads once more for its message

        async def read(self) -> bytes:
            if self._refused is not None:
                raise self._refused
            if self._body is None:  # aiohttp's own cache of the body, which json() and text() read
                try:
                    self._body = await self._read_bounded()
                except BaseException as error:
                    self._refused = error if isinstance(error, RefusedAnswer) else None
                    self.close()
                    raise
            return await super().read()

        async def _read_bounded(self) -> bytes:
            if self.content_type == "text/html":
                raise RefusedAnswer("the answer is an HTML page, not a GraphQL JSON object")
            if (self.content_length or 0) > max_bytes:
                raise RefusedAnswer(f"the answer declares {self.content_length} bytes, past the bound of {max_bytes}")
            body = bytearray()
            async for chunk in self.content.iter_any():
                body += chunk
                if len(body) > max_bytes:
                    raise RefusedAnswer(f"the answer is longer than the bound of {max_bytes} bytes")
            return bytes(body)

    return BoundedResponse


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
        bounds: AnswerBounds = AnswerBounds(),
        log: logging.Logger | None = None,
        logged_wait_seconds: float | None = None,  # None: LOGGED_WAIT_SECONDS
        on_sent: Callable[[], None] | None = None,  # told each time a request has left
    ) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._timeout_seconds = timeout_seconds
        self._max_in_flight = max_in_flight
        self._limiter = limiter
        self._retry = retry
        # Every reason this client writes is cut short and stripped of the key and the URL's secrets.
        self.bounds = replace(bounds, secrets=(*bounds.secrets, *([api_key] if api_key else []), *url_secrets(url)))
        self._log = log or logging.getLogger(__name__)
        self._logged_wait_seconds = LOGGED_WAIT_SECONDS if logged_wait_seconds is None else logged_wait_seconds
        self._on_sent = on_sent
        self._client: Client | None = None
        self._session: Any = None
        self.awaiting_answers = 0  # requests started and not answered yet: none while the limit holds the next back

    @property
    def seconds_per_request(self) -> float:
        """The rate limit's pace: its window over the requests it allows."""
        return self._limiter.window_seconds / self._limiter.limit

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
                "response_class": _bounded_response(self.bounds.max_body_bytes),
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
                if self._on_sent is not None:
                    self._on_sent()

        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(chunk_sent)
        return trace

    @property
    def endpoint(self) -> str:
        """This endpoint's fingerprint, as status rows record it."""
        return endpoint_fingerprint(self._url)

    async def discover(self) -> SubgraphInfo:
        """Payout shape and indexing status, in one request; an unusable answer is retried."""
        info, _ = await self._execute(DISCOVERY_QUERY, {}, read=lambda data: _subgraph_info(data, self.endpoint))
        return info

    async def fetch_batch(self, query: DocumentNode, ids: Sequence[str]) -> BatchAnswer:
        """Conditions for at most MAX_IDS_PER_REQUEST normalised ids; never raises.

        graph-node matches ids exactly, and stores them lowercase with `0x`.
        """
        if len(ids) > MAX_IDS_PER_REQUEST:
            raise ValueError(f"{len(ids)} ids in one request; graph-node answers at most {MAX_IDS_PER_REQUEST}")
        answer = BatchAnswer(ids=list(ids))
        try:
            (answer.entities, answer.block_number), answer.stats = await self._execute(
                query, {"ids": [f"0x{cid}" for cid in ids]}, read=_payout_page
            )
        except PermanentFailure as failure:
            answer.error, answer.stats = str(failure), failure.stats
        return answer

    async def changes_since(self, query: DocumentNode, since: int, at_block: int, max_pages: int) -> ChangeFeed:
        """Every condition changed since block `since`, as of block `at_block`; incomplete when
        that takes more than `max_pages` requests, a page fails or the endpoint cannot answer
        at that block (pruned history, no time travel), and then a plain re-check is the way."""
        feed = ChangeFeed(entities={}, block_number=at_block)
        after = ""
        for _ in range(max_pages):
            try:
                (page, _), stats = await self._execute(
                    query, {"since": since, "after": after, "at": at_block}, read=_payout_page
                )
            except PermanentFailure as failure:
                feed.stats.add(failure.stats)
                feed.failure = str(failure)
                return feed
            feed.stats.add(stats)
            feed.entities.update((str(entity.get("id")), entity) for entity in page)
            if len(page) < MAX_IDS_PER_REQUEST:
                feed.complete = True
                return feed
            after = str(page[-1].get("id"))
        return feed

    async def _execute(
        self, query: DocumentNode, variables: dict[str, Any], read: Callable[[Any], T] | None = None
    ) -> tuple[T, RequestStats]:
        """The answer's data as `read` makes it (a dict by default), retrying unusable answers;
        raises PermanentFailure when every attempt failed or the server said stop."""
        read = read or _data_object
        stats = RequestStats()
        attempt = 0
        while True:
            attempt += 1
            stats.requests += 1
            stats.retries += attempt > 1
            try:
                return read(await self._attempt(query, variables)), stats
            except _Retryable as failure:
                reason = self.bounds.reason(str(failure))
                stats.rate_limited += failure.rate_limited
                if failure.rate_limited:  # the server counted more than we did: allow it more jitter
                    self._limiter.widen_margin()
                if attempt >= self._retry.max_attempts:
                    raise _attach(PermanentFailure(f"{reason} (after {attempt} attempts)"), stats) from None
                if failure.retry_after and failure.retry_after > self.bounds.max_retry_after_seconds:
                    self._log.warning(
                        f"the subgraph asks for a wait of {failure.retry_after:.0f} s ({reason}), past the bound of "
                        f"{self.bounds.max_retry_after_seconds:.0f} s: this request fails now, the next run asks again"
                    )
                    raise _attach(PermanentFailure(f"{reason}; Retry-After {failure.retry_after:.0f} s is past the bound"), stats) from None
                if failure.retry_after:
                    self._limiter.pause(failure.retry_after)
                delay = self._retry.delay(attempt, failure.retry_after)
                if delay >= self._logged_wait_seconds:
                    self._log.info(f"waiting {delay:.0f} s before attempt {attempt + 1}: {reason}")
                await asyncio.sleep(delay)
            except PermanentFailure as failure:
                raise _attach(PermanentFailure(self.bounds.reason(str(failure))), stats) from None

    async def _attempt(self, query: DocumentNode, variables: dict[str, Any]) -> Any:
        """One request, with every upstream failure sorted into retryable or permanent.

        Nothing an answer holds escapes as anything else: gql raises AssertionError for
        `{"data": null}` and AttributeError for a body that is a JSON list or string."""
        async with self._in_flight:
            slot = await self._limiter.acquire()
            self.awaiting_answers += 1
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
            except TransportProtocolError:  # its message holds the whole body: never keep it
                raise _Retryable("the answer is not a GraphQL JSON object") from None
            except RefusedAnswer as error:
                raise _Retryable(str(error)) from None
            except (TransportError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                raise _Retryable(f"{type(error).__name__}: {error}".rstrip(": ")) from None
            except Exception as error:  # noqa: BLE001 - see the docstring
                raise _Retryable(f"an unreadable answer ({type(error).__name__})") from None
            finally:
                self.awaiting_answers -= 1


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
    return _Retryable(f"HTTP {code}", retry_after=retry_after_seconds(headers.get("Retry-After")), rate_limited=code == 429)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds: a number of seconds or an HTTP date; None when unreadable."""
    text = (value or "").strip()[:64]
    if text.isascii() and text.isdigit():
        return float(text[:12])  # 12 digits: 30,000 years, past any bound, yet a cheap float
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - (now or datetime.now(timezone.utc))).total_seconds())


def _block_unavailable(errors: object) -> bool:
    """graph-node's refusal of a `block:` argument: a block it has not indexed yet ("… is
    therefore not yet available") or whose history it pruned ("… is therefore not available")."""
    return "is therefore not" in _messages(errors) and "block number" in _messages(errors)


def _messages(errors: object) -> str:
    """The errors' messages, for a reason (which `AnswerBounds.reason` cuts short)."""
    if isinstance(errors, list):
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:5])
    return str(errors)


def _data_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Retryable(f"the answer's data is a {type(data).__name__}, not an object")
    return data


def _meta_block(data: dict[str, Any]) -> dict[str, Any]:
    """The answer's `_meta.block`, whose `number` is a block number, or a retry."""
    meta = data.get("_meta")
    block = meta.get("block") if isinstance(meta, dict) else None
    number = block.get("number") if isinstance(block, dict) else None
    if type(number) is not int or not 0 <= number <= MAX_BLOCK_NUMBER:
        raise _Retryable(f"the answer's _meta.block.number is {str(number)[:40]!r}, not a block number")
    return block  # type: ignore[return-value]


def _payout_page(data: Any) -> tuple[list[dict[str, Any]], int]:
    """A payout query's conditions and `_meta.block.number`, or a retry if either is unusable."""
    conditions = _data_object(data).get("conditions")
    if not isinstance(conditions, list) or not all(isinstance(entity, dict) for entity in conditions):
        raise _Retryable("the answer's conditions are not a list of objects")
    return conditions, _meta_block(data)["number"]


def _names(items: object) -> set[str]:
    """The `name`s in an introspection list; anything else in it names nothing."""
    if not isinstance(items, list):
        return set()
    return {item["name"] for item in items if isinstance(item, dict) and isinstance(item.get("name"), str)}


def _subgraph_info(data: Any, endpoint: str) -> SubgraphInfo:
    """The discovery answer, or a retry if it is unusable."""
    condition_type = _data_object(data).get("__type")
    if condition_type is None:
        raise UnsupportedSubgraph("the subgraph has no Condition entity")
    if not isinstance(condition_type, dict):
        raise _Retryable("the answer's __type is not an object")
    block, meta = _meta_block(data), data["_meta"]
    timestamp = block.get("timestamp")
    filter_type = data.get("filter")
    return SubgraphInfo(
        endpoint=endpoint,
        shape=PayoutShape.from_fields(_names(condition_type.get("fields"))),
        block_number=block["number"],
        block_timestamp=timestamp if type(timestamp) is int and 0 < timestamp <= MAX_BLOCK_NUMBER else None,
        has_indexing_errors=meta.get("hasIndexingErrors") is True,
        supports_change_block="_change_block" in _names(filter_type.get("inputFields") if isinstance(filter_type, dict) else None),
    )

