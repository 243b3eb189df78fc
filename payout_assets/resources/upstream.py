"""What every upstream resource shares: how hard we may press the endpoint and how we retry."""

import dagster as dg
from pydantic import Field

from payout_assets.resources.goldsky_client import RetryPolicy


class UpstreamPacing(dg.ConfigurableResource):
    """Rate limit, timeout and retries of one endpoint; the subgraph and the chain resources extend it."""

    rate_limit: int = Field(default=50, description="At most this many requests start in any window.")
    window_seconds: float = Field(default=10.0, description="The rate limit's sliding window, in seconds.")
    timeout_seconds: float = Field(default=30.0, description="Per-request timeout.")
    max_attempts: int = Field(default=6, description="Attempts per request before its ids (or calls) are given up as failed.")
    backoff_seconds: float = Field(default=1.0, description="First retry delay; doubles per attempt, with jitter.")
    max_backoff_seconds: float = Field(default=60.0, description="Longest delay between two attempts.")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff_seconds, self.max_backoff_seconds)
