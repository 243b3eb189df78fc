"""Work a replica server runs off its event loop, one piece at a time.

A node's front end counts each request when it arrives, whatever the node behind it is busy
with: the replicas (this one and the chain's) compute on a worker thread, so that their event
loop stays free to count arrivals. Computed on the loop, a piece of work delayed the next
arrival's count by its length, and a request counted late looked early one window later (a 429).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class OffLoop:
    """`run` work on a worker thread after the previous piece has finished; `busy` is held
    meanwhile, for anything else that must not run beside it; `cpu_seconds` is its CPU."""

    def __init__(self) -> None:
        self.busy = asyncio.Lock()
        self.cpu_seconds = 0.0

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        async with self.busy:
            return await asyncio.to_thread(self._timed, work, *args)

    def _timed(self, work: Callable[..., T], *args: Any) -> T:
        started = time.thread_time()
        try:
            return work(*args)
        finally:
            self.cpu_seconds += time.thread_time() - started
