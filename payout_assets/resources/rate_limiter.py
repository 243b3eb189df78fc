"""A sliding-window limiter on request starts, shared by every request of a process."""

import asyncio
import time
from collections import deque
from collections.abc import Callable

# Our clock starts a request slightly before the server sees it; keep this much distance
# from the server's window edge so jitter never makes it count one request too many.
WINDOW_MARGIN_SECONDS = 0.25


class SlidingWindowLimiter:
    """At most `limit` starts in any `window_seconds`, retries included.

    A sliding window also respects fixed-window and token-bucket servers with the same
    nominal limit, whichever the upstream uses. Waiters are served in arrival order.

        limiter = SlidingWindowLimiter(limit=50, window_seconds=10)
        await limiter.acquire()  # then send the request at once
    """

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per window, got {limit}")
        self.limit = limit
        self.window_seconds = window_seconds + WINDOW_MARGIN_SECONDS
        self._clock = clock
        self._starts: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every start for `seconds` (the server asked us to, with Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self._wait_seconds()) > 0:
                await asyncio.sleep(wait)
            self._starts.append(self._clock())

    def _wait_seconds(self) -> float:
        now = self._clock()
        while self._starts and self._starts[0] <= now - self.window_seconds:
            self._starts.popleft()
        wait = self._paused_until - now
        if len(self._starts) >= self.limit:
            wait = max(wait, self._starts[0] + self.window_seconds - now)
        return wait
