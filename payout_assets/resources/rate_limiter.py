"""A sliding-window limiter on request starts, shared by every request of a process."""

import asyncio
import json
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from payout_assets.core.json_file import write_json

# The server counts a request when it arrives, a little after it left us: keep a margin from
# the window's edge for that jitter. It costs once per window (2 s at 2,000,000 ids at a constant
# 50 ms), so it follows the evidence: it starts at 50 ms and shrinks by a fifth after each
# window's worth of starts, down to 20 ms, while the server refuses none; each refusal for the
# rate doubles it (up to a second), and it never shrinks again below the margin that followed a
# refusal. 20 ms: with 10 ms, a 2,000,000-id run came within 2.1 ms of a 429 from the replica
# (the bench's "slack ms", 2026-12-03).
START_MARGIN_SECONDS = 0.05
MIN_MARGIN_SECONDS = 0.02
MAX_MARGIN_SECONDS = 1.0
MARGIN_DECAY = 0.8


@dataclass
class Slot:
    """One request's place in the window, from the moment it starts."""

    at: float


class SlidingWindowLimiter:
    """At most `limit` starts in any `window_seconds`, retries included.

    A sliding window also respects fixed-window and token-bucket servers with the same
    nominal limit, whichever the upstream uses. Waiters are served in arrival order. One
    limiter serves a whole process, across the event loops its steps run one after another.
    With a `history` file it also counts the starts of the process before it: runs of one
    data directory take turns (the run lock), but the next may begin within the last's window.

        slot = await limiter.acquire()
        ...                      # send the request
        limiter.mark_sent(slot)  # when it really left: a busy event loop may delay it
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        history: Path | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per window, got {limit}")
        self.limit = limit
        self.window_seconds = window_seconds
        self.margin_seconds = START_MARGIN_SECONDS
        self._least_margin = MIN_MARGIN_SECONDS  # raised by each refusal for the rate
        self._starts = 0
        self._clock = clock
        self._slots: list[Slot] = []
        self._paused_until = 0.0
        # One lock per event loop (each step runs its own); a finished loop takes its lock with it.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._history = history
        self._slots = [Slot(at) for at in self._read_history()]

    def pause(self, seconds: float) -> None:
        """Hold every start for `seconds` (the server asked us to, with Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def widen_margin(self) -> None:
        """The server refused a request for its rate although we kept to it: allow more jitter,
        from now on."""
        self.margin_seconds = self._least_margin = min(2 * self.margin_seconds, MAX_MARGIN_SECONDS)

    async def acquire(self) -> Slot:
        # An asyncio lock belongs to one loop; the window it guards belongs to the process.
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            while (wait := self._wait_seconds()) > 0:
                await asyncio.sleep(wait)
            slot = Slot(self._clock())
            self._slots.append(slot)
            self._write_history()
            self._starts += 1
            if self._starts % self.limit == 0:  # a window's worth more: shrink, never below what a refusal set
                self.margin_seconds = max(self._least_margin, self.margin_seconds * MARGIN_DECAY)
            return slot

    def mark_sent(self, slot: Slot) -> None:
        """Move the slot's start to now: the window counts from when the request left."""
        slot.at = max(slot.at, self._clock())
        self._write_history()

    def _wait_seconds(self) -> float:
        now = self._clock()
        expired = now - self.window_seconds - self.margin_seconds  # a slot that started then no longer counts
        self._slots = [slot for slot in self._slots if slot.at > expired]
        wait = self._paused_until - now
        if len(self._slots) >= self.limit:
            # The same comparison as the line above, so rounding never lets a start through early.
            wait = max(wait, min(slot.at for slot in self._slots) - expired)
        return wait

    def _read_history(self) -> list[float]:
        """Earlier processes' starts still inside the window, on this process's clock."""
        if self._history is None:
            return []
        try:
            starts = [float(t) for t in json.loads(self._history.read_text())]
        except (OSError, ValueError, TypeError):  # none yet, or unreadable: nothing to count
            return []
        offset = time.time() - self._clock()
        return [t - offset for t in starts if t - offset > self._clock() - self.window_seconds - MAX_MARGIN_SECONDS]

    def _write_history(self) -> None:
        if self._history is None:
            return
        offset = time.time() - self._clock()
        write_json(self._history, [slot.at + offset for slot in self._slots])
