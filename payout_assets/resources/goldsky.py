"""The Goldsky subgraph endpoint as a Dagster resource."""

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.redaction import redact_url
from payout_assets.core.subgraph import endpoint_fingerprint
from payout_assets.resources.goldsky_client import GoldskyClient
from payout_assets.resources.rate_limiter import SlidingWindowLimiter
from payout_assets.resources.upstream import UpstreamPacing
from payout_assets.settings import PUBLIC_PNL_SUBGRAPH, SETTINGS

# The checked fields and their variables: a resource built in code meets the same rules.
VARIABLES = {
    "url": "GOLDSKY_URL",
    "rate_limit": "GOLDSKY_RATE_LIMIT",
    "timeout_seconds": "GOLDSKY_TIMEOUT_SECONDS",
    "max_attempts": "GOLDSKY_MAX_ATTEMPTS",
    "backoff_seconds": "GOLDSKY_BACKOFF_SECONDS",
    "max_body_bytes": "GOLDSKY_MAX_BODY_BYTES",
    "max_reason_chars": "GOLDSKY_MAX_REASON_CHARS",
    "max_number_digits": "GOLDSKY_MAX_NUMBER_DIGITS",
    "max_decimal_exponent": "GOLDSKY_MAX_DECIMAL_EXPONENT",
    "max_retry_after_seconds": "GOLDSKY_MAX_RETRY_AFTER_SECONDS",
}

REQUEST_HISTORY = "goldsky_requests.json"


class GoldskyResource(UpstreamPacing):
    """A graph-node endpoint and how hard we may press it.

        async with goldsky.client() as client:
            info = await client.discover()
    """

    url: str = Field(default=PUBLIC_PNL_SUBGRAPH, description="Subgraph GraphQL endpoint (GOLDSKY_URL).")
    api_key: str | None = Field(
        default=None, description="Bearer token for a private endpoint (GOLDSKY_API_KEY); never logged."
    )
    max_in_flight: int = Field(default=50, description="Requests awaiting an answer at once.")
    history_dir: str | None = Field(
        default=None,
        description="Directory (the shard directory) where the last window's request starts are kept, "
        "so a run started right after another, in another process, counts them too.",
    )
    max_body_bytes: int = Field(
        default=AnswerBounds.max_body_bytes,
        description="Longest answer body read; a longer one is dropped and retried (GOLDSKY_MAX_BODY_BYTES).",
    )
    max_reason_chars: int = Field(
        default=AnswerBounds.max_reason_chars, description="Longest stored reason (GOLDSKY_MAX_REASON_CHARS)."
    )
    max_number_digits: int = Field(
        default=AnswerBounds.max_number_digits,
        description="Most digits of an upstream number before it is `malformed` (GOLDSKY_MAX_NUMBER_DIGITS).",
    )
    max_decimal_exponent: int = Field(
        default=AnswerBounds.max_decimal_exponent,
        description="Largest |power of ten| of a BigDecimal before it is `malformed` (GOLDSKY_MAX_DECIMAL_EXPONENT).",
    )
    max_retry_after_seconds: float = Field(
        default=AnswerBounds.max_retry_after_seconds,
        description="Longest Retry-After honoured; past it the request fails (GOLDSKY_MAX_RETRY_AFTER_SECONDS).",
    )

    @property
    def fingerprint(self) -> str:
        """How stored statuses name this endpoint (never by its URL, which may carry a key)."""
        return endpoint_fingerprint(self.url)

    def client(
        self, log: logging.Logger | None = None, logged_wait_seconds: float | None = None, on_sent: Callable[[], None] | None = None
    ) -> GoldskyClient:
        """A client for one step; every client of the process shares one limiter per endpoint,
        so the pre-flight probe and the fetch never start more than the limit between them.
        Retry waits of `logged_wait_seconds` (default: 5 s) or more are logged to `log`;
        `on_sent` is called each time a request has left."""
        for field, variable in VARIABLES.items():
            SETTINGS[variable].check(getattr(self, field))
        return GoldskyClient(
            url=self.url,
            limiter=_process_limiter(self.url, self.rate_limit, self.window_seconds, self.history_dir),
            api_key=self.api_key,
            timeout_seconds=self.timeout_seconds,
            max_in_flight=self.max_in_flight,
            retry=self.retry_policy(),
            bounds=AnswerBounds(
                max_body_bytes=self.max_body_bytes,
                max_reason_chars=self.max_reason_chars,
                max_number_digits=self.max_number_digits,
                max_decimal_exponent=self.max_decimal_exponent,
                max_retry_after_seconds=self.max_retry_after_seconds,
            ),
            log=log,
            logged_wait_seconds=logged_wait_seconds,
            on_sent=on_sent,
        )

    @property
    def display_url(self) -> str:
        """The endpoint as logs and metadata show it: without user-info or a key."""
        return redact_url(self.url)


@functools.cache
def _process_limiter(url: str, rate_limit: int, window_seconds: float, history_dir: str | None) -> SlidingWindowLimiter:
    history = None if history_dir is None else Path(history_dir) / REQUEST_HISTORY
    return SlidingWindowLimiter(rate_limit, window_seconds, history=history)
