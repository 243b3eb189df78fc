"""The Polygon chain as a second, independent source: a Dagster resource, off by default."""

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import Field

from payout_assets.resources.conditional_tokens import ConditionalTokens
from payout_assets.resources.rate_limiter import SlidingWindowLimiter
from payout_assets.core.redaction import rpc_display_url
from payout_assets.resources.rpc_client import RpcClient
from payout_assets.resources.upstream import UpstreamPacing
from payout_assets.settings import POLYMARKET_CTF


class ChainResource(UpstreamPacing):
    """A Polygon JSON-RPC endpoint and the Conditional Tokens contract on it.

    Off while `rpc_url` is unset: nothing asks the chain, and the checks that would say so.

        async with chain.contract() as ctf:
            conditions, stats = await ctf.conditions(["9a0d…"])
    """

    rpc_url: str | None = Field(
        default=None, description="Polygon JSON-RPC endpoint (POLYGON_RPC_URL); may carry an API key, never shown. Unset: off."
    )
    contract_address: str = Field(default=POLYMARKET_CTF, description="The Conditional Tokens contract (POLYGON_CTF_ADDRESS).")
    batch_size: int = Field(default=50, description="Calls per JSON-RPC batch (POLYGON_RPC_BATCH_SIZE).")
    max_in_flight: int = Field(default=8, description="Batches awaiting an answer at once.")
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
            retry=self.retry_policy(),
        )
        async with client:
            yield ConditionalTokens(client, self.contract_address)


@functools.cache
def _process_limiter(url: str, rate_limit: int, window_seconds: float) -> SlidingWindowLimiter:
    """One limiter per process and endpoint: the check and the fetch never exceed it between them."""
    return SlidingWindowLimiter(rate_limit, window_seconds)
