"""The Polygon chain as a second, independent source: a Dagster resource, off by default."""

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import dagster as dg
from pydantic import Field

from payout_assets.resources.conditional_tokens import ConditionalTokens
from payout_assets.resources.goldsky_client import RetryPolicy
from payout_assets.resources.rate_limiter import SlidingWindowLimiter
from payout_assets.core.redaction import rpc_display_url
from payout_assets.resources.rpc_client import RpcClient
from payout_assets.settings import POLYMARKET_CTF


class ChainResource(dg.ConfigurableResource):
    """A Polygon JSON-RPC endpoint and the Conditional Tokens contract on it.

    Off while `rpc_url` is unset: nothing asks the chain, and the checks that would say so.

        async with chain.contract() as ctf:
            conditions, stats = await ctf.conditions(["9a0d…"])
    """

    rpc_url: str | None = Field(
        default=None, description="Polygon JSON-RPC endpoint (POLYGON_RPC_URL); may carry an API key, never shown. Unset: off."
    )
    contract_address: str = Field(default=POLYMARKET_CTF, description="The Conditional Tokens contract (POLYGON_CTF_ADDRESS).")
    rate_limit: int = Field(default=50, description="At most this many requests start in any window (POLYGON_RPC_RATE_LIMIT).")
    window_seconds: float = Field(default=10.0, description="The rate limit's sliding window, in seconds.")
    batch_size: int = Field(default=50, description="Calls per JSON-RPC batch (POLYGON_RPC_BATCH_SIZE).")
    max_in_flight: int = Field(default=8, description="Batches awaiting an answer at once.")
    timeout_seconds: float = Field(default=30.0, description="Per-request timeout.")
    max_attempts: int = Field(default=6, description="Attempts per call before it is given up as failed.")
    backoff_seconds: float = Field(default=1.0, description="First retry delay; doubles per attempt, with jitter.")
    max_backoff_seconds: float = Field(default=60.0, description="Longest delay between two attempts.")
    lagging_after_hours: float = Field(
        default=6.0, description="While the subgraph's head is older than this, its unresolved ids are asked of the chain too."
    )
    log_block_range: int = Field(default=2000, description="Blocks per eth_getLogs (POLYGON_LOG_BLOCK_RANGE); free endpoints cap it.")
    log_start_block: int = Field(
        default=4_023_686, description="First block scanned for resolution events (POLYGON_LOG_START_BLOCK): the CTF's deployment."
    )

    @property
    def enabled(self) -> bool:
        return bool(self.rpc_url)

    @property
    def display_url(self) -> str:
        """Where the chain is read, fit for logs and metadata (no path, no query, no key)."""
        return rpc_display_url(self.rpc_url) if self.rpc_url else "off (POLYGON_RPC_URL is unset)"

    @asynccontextmanager
    async def contract(self) -> AsyncIterator[ConditionalTokens]:
        if not self.rpc_url:
            raise RuntimeError("the chain source is off: POLYGON_RPC_URL is unset")
        client = RpcClient(
            self.rpc_url,
            limiter=_process_limiter(self.rpc_url, self.rate_limit, self.window_seconds),
            batch_size=self.batch_size,
            timeout_seconds=self.timeout_seconds,
            max_in_flight=self.max_in_flight,
            retry=RetryPolicy(self.max_attempts, self.backoff_seconds, self.max_backoff_seconds),
        )
        async with client:
            yield ConditionalTokens(client, self.contract_address)


@functools.cache
def _process_limiter(url: str, rate_limit: int, window_seconds: float) -> SlidingWindowLimiter:
    """One limiter per process and endpoint: the check and the fetch never exceed it between them."""
    return SlidingWindowLimiter(rate_limit, window_seconds)
