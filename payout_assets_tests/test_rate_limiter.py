import asyncio
import gc
import json
import math
import time
import weakref

import pytest

from payout_assets.resources.rate_limiter import (
    MARGIN_DECAY,
    MAX_MARGIN_SECONDS,
    MIN_MARGIN_SECONDS,
    START_MARGIN_SECONDS,
    SlidingWindowLimiter,
    Slot,
)


class FakeClock:
    """Virtual time: asyncio.sleep is patched to advance it, so the test runs instantly."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_starts(
    limit: int, window: float, requests: int, pause_at: int | None = None, limiter: SlidingWindowLimiter | None = None,
    clock: FakeClock | None = None,
) -> list[float]:
    """Start times of `requests` requests through `limiter` (a new one by default), on `clock`'s virtual time."""
    clock = clock or FakeClock()
    limiter = limiter or SlidingWindowLimiter(limit, window, clock=clock)
    starts: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        # A real sleep always lets the clock move on: a wait of 4e-16 s, which rounding can
        # leave, added to 10.02 would not, and the waiter would spin forever.
        clock.now = max(clock.now + seconds, math.nextafter(clock.now, math.inf))
        await real_sleep(0)

    async def one(i: int) -> None:
        if i == pause_at:
            limiter.pause(30)
        await limiter.acquire()
        starts.append(clock.now)

    async def main() -> None:
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            await asyncio.gather(*(one(i) for i in range(requests)))
        finally:
            asyncio.sleep = real_sleep  # type: ignore[assignment]

    asyncio.run(main())
    return starts


def max_in_any_window(starts: list[float], window: float) -> int:
    return max(sum(1 for t in starts if s <= t < s + window) for s in starts)


def test_never_more_than_the_limit_in_any_window():
    starts = run_starts(limit=50, window=10, requests=171)
    assert max_in_any_window(starts, 10) == 50
    # 171 requests start in four waves: 0, 10, 20, 30 seconds (plus the safety margin).
    assert starts[49] == 0 and starts[50] > 10 and starts[-1] < 31 + 4 * START_MARGIN_SECONDS


def test_the_margin_shrinks_by_a_fifth_each_window_down_to_its_least():
    starts = run_starts(limit=50, window=10, requests=50 * 12 + 1)
    gaps = [starts[50 * (k + 1)] - starts[50 * k] - 10 for k in range(12)]
    expected = [max(MIN_MARGIN_SECONDS, START_MARGIN_SECONDS * MARGIN_DECAY ** (k + 1)) for k in range(12)]
    assert gaps == pytest.approx(expected, abs=1e-9)
    assert gaps[0] < START_MARGIN_SECONDS and gaps[-1] == pytest.approx(MIN_MARGIN_SECONDS)  # 50 ms down to 20
    assert max_in_any_window(starts, 10) == 50


def test_after_a_refusal_the_margin_never_shrinks_below_what_it_set():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 10, clock=clock)
    run_starts(limit=2, window=10, requests=20, limiter=limiter, clock=clock)
    assert limiter.margin_seconds == pytest.approx(MIN_MARGIN_SECONDS)
    limiter.widen_margin()  # the server refused one: twice the margin, from now on
    assert limiter.margin_seconds == pytest.approx(2 * MIN_MARGIN_SECONDS)
    starts = run_starts(limit=2, window=10, requests=9, limiter=limiter, clock=clock)
    assert [starts[k + 2] - starts[k] - 10 for k in range(0, 7, 2)] == pytest.approx([2 * MIN_MARGIN_SECONDS] * 4, abs=1e-9)


def test_each_refusal_for_the_rate_doubles_the_margin_up_to_a_second():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10, clock=clock)

    def next_start() -> float:
        limiter._slots = [Slot(0.0)]
        return limiter._wait_seconds()

    assert next_start() == 10 + START_MARGIN_SECONDS
    widened = []
    for _ in range(8):
        limiter.widen_margin()
        widened.append(limiter.margin_seconds)
        assert next_start() == 10 + limiter.margin_seconds
    assert widened[:2] == [2 * START_MARGIN_SECONDS, 4 * START_MARGIN_SECONDS]
    assert widened[-1] == MAX_MARGIN_SECONDS and widened == sorted(widened)


def test_pause_holds_every_start():
    starts = run_starts(limit=50, window=10, requests=3, pause_at=0)
    assert min(starts) >= 30


def test_a_shorter_pause_asked_later_never_cuts_a_longer_one_short():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(50, 10, clock=clock)
    limiter.pause(30)
    clock.now = 1.0
    limiter.pause(1)
    assert limiter._wait_seconds() == 29.0


def test_a_request_sent_late_holds_its_slot_from_when_it_left():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10, clock=clock)

    async def main() -> float:
        slot = await limiter.acquire()
        clock.now = 3.0  # the event loop was busy: the request leaves three seconds late
        limiter.mark_sent(slot)
        return clock.now + limiter._wait_seconds()  # when the next request may start

    assert asyncio.run(main()) == 3.0 + 10 + limiter.margin_seconds


def test_the_next_process_counts_the_last_windows_starts_from_the_history(tmp_path):
    history = tmp_path / "requests.json"
    earlier = SlidingWindowLimiter(2, 10, history=history)

    async def two_starts() -> None:
        for _ in range(2):
            earlier.mark_sent(await earlier.acquire())

    asyncio.run(two_starts())
    later = SlidingWindowLimiter(2, 10, history=history)  # the next run, in another process
    assert 9.5 < later._wait_seconds() <= 10 + START_MARGIN_SECONDS
    history.write_text("not json")  # an unreadable history counts nothing, and breaks nothing
    assert SlidingWindowLimiter(2, 10, history=history)._wait_seconds() <= 0


def test_the_history_keeps_the_starts_still_inside_the_window_and_its_margin(tmp_path):
    """A start 10.01 s old still counts against a 10 s window with its margin, in the next process too."""
    history = tmp_path / "requests.json"
    history.write_text(json.dumps([time.time() - 10.01] * 2))
    assert SlidingWindowLimiter(2, 10, history=history)._wait_seconds() > 0
    history.write_text(json.dumps([time.time() - 10 - MAX_MARGIN_SECONDS - 0.01] * 2))  # past any margin: forgotten
    assert SlidingWindowLimiter(2, 10, history=history)._wait_seconds() <= 0


def test_the_limiter_keeps_no_event_loop_alive():
    limiter = SlidingWindowLimiter(5, 1.0)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(limiter.acquire())
    loop.close()
    finished = weakref.ref(loop)
    del loop
    gc.collect()
    assert finished() is None


def test_rounding_never_lets_a_start_through_while_the_window_is_full():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10, clock=clock)
    for tenths in range(2000):  # starts whose window's end rounds either way
        limiter._slots = [Slot(tenths / 10)]
        clock.now = tenths / 10 + limiter.window_seconds
        wait = limiter._wait_seconds()
        assert (wait > 0) == bool(limiter._slots)  # a slot still counted always makes the next start wait
