"""Upstream misbehaviour: Goldsky's sliding-window rate limit and reproducible injected faults."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

FAULT_KINDS = ("429", "429_no_retry_after", "500", "502", "503", "504", "slow", "drop",
               "graphql_error")
# What a hostile upstream or a proxy in front of it sends; not in the default mix, because
# corrupt values and day-long Retry-After end ids `malformed` or `failed` by design.
HOSTILE_KINDS = ("html_200", "oversized", "corrupt_answer", "corrupt_values", "header_echo",
                 "huge_retry_after")
HUGE_RETRY_AFTER_SECONDS = 86_400

# Answer bodies that are JSON but no usable GraphQL answer to a payout query.
CORRUPT_ANSWERS: tuple[Any, ...] = (
    None, [], "data", ["data"], 0, {"data": None}, {"data": []}, {"data": "conditions"},
    {"data": {"conditions": "0x00", "_meta": {"block": {"number": 1}}}},
    {"data": {"conditions": [1, 2, 3], "_meta": {"block": {"number": 1}}}},
    {"data": {"conditions": []}},
    {"data": {"conditions": [], "_meta": {"block": None}}},
    {"data": {"conditions": [], "_meta": {"block": {"number": -1}}}},
    {"data": {"conditions": [], "_meta": {"block": {"number": "12"}}}},
    {"data": {"conditions": [], "_meta": {"block": {"number": True}}}},
    {"data": {"conditions": [], "_meta": {"block": {"number": 2**70}}}},
    {"errors": "not a list", "data": None},
)
# Entity values no payout explains, each wrong for every field it may replace.
CORRUPT_VALUES: tuple[Any, ...] = (
    "\u00b2",  # a superscript two: str.isdigit() says yes, int() says no
    "9" * 5000,  # past Python's int-string limit
    "0." + "3" * 3000,
    "1e-100000000",  # exact arithmetic on it would run for minutes
    "-1", "NaN", True, 1.5, {"nested": []}, ["1", "x"],
)


@dataclass(frozen=True)
class FaultMix:
    """Which share of requests fail and how; `id_prefixes` confines faults to one shard's ids."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 30.0
    id_prefixes: tuple[str, ...] = ()
    page_bytes: int = 2**20  # an html_200 page
    oversized_bytes: int = 32 * 2**20  # streamed without a Content-Length

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS + HOSTILE_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {FAULT_KINDS + HOSTILE_KINDS}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultMix:
        """Build from JSON (lists become tuples); unknown keys are an error, not ignored."""
        names = {f.name for f in fields(cls)}
        if set(data) - names:
            raise ValueError(f"unknown fault settings {sorted(set(data) - names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class FaultInjector:
    """Decides per request, with its own seeded generator, so a run's faults are reproducible."""

    def __init__(self, mix: FaultMix) -> None:
        self.mix = mix
        self._rng = random.Random(mix.seed)
        # Corruptions draw from their own generator, so the faults' sequence does not depend
        # on how many entities the corrupted answers happened to hold.
        self._corruption_rng = random.Random(mix.seed + 1)

    def draw(self, ids: Sequence[str]) -> str | None:
        """The fault kind for a request asking for `ids`, or None to answer it normally."""
        prefixes = self.mix.id_prefixes
        if prefixes and not (ids and all(i.startswith(prefixes) for i in ids)):
            return None
        if self._rng.random() >= self.mix.rate:
            return None
        return self._rng.choice(self.mix.kinds)

    def corrupt_answer(self) -> Any:
        return self._corruption_rng.choice(CORRUPT_ANSWERS)

    def corrupt_values(self, entities: list[dict[str, Any]]) -> list[str]:
        """Replace one value of every entity (a list value: its first element) by a corrupt
        one; returns the ids corrupted."""
        for entity in entities:
            field = self._corruption_rng.choice(sorted(name for name in entity if name != "id"))
            value = self._corruption_rng.choice(CORRUPT_VALUES)
            entity[field] = [value, *entity[field][1:]] if isinstance(entity[field], list) else value
        return [str(entity["id"]) for entity in entities]


class SlidingWindow:
    """At most `limit` accepted requests in any `seconds`-long window; refusals do not count.

    `closest_seconds` is how near a client came to a refusal: the least time by which an accepted
    request arrived after the window of the `limit`-th accepted request before it had passed. For
    a client keeping a margin from the window's edge, it is that margin less the arrival jitter
    it met, measured where the count is made."""

    def __init__(self, limit: int | None, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.max_in_window = 0
        self.closest_seconds: float | None = None  # None until `limit` requests were accepted before one
        self._accepted: deque[float] = deque()
        self._last: deque[float] = deque()  # the last `limit` accepted, expired or not

    def try_acquire(self, now: float) -> float | None:
        """Accept (returns None) or refuse with the seconds until a slot frees."""
        accepted = self._accepted
        while accepted and accepted[0] <= now - self.seconds:
            accepted.popleft()
        if self.limit is not None and len(accepted) >= self.limit:
            return accepted[len(accepted) - self.limit] + self.seconds - now
        accepted.append(now)
        self.max_in_window = max(self.max_in_window, len(accepted))
        self._note_clearance(now)
        return None

    def _note_clearance(self, now: float) -> None:
        if self.limit is None:
            return
        if len(self._last) >= self.limit:
            cleared = now - self._last[-self.limit] - self.seconds
            self.closest_seconds = cleared if self.closest_seconds is None else min(self.closest_seconds, cleared)
        self._last.append(now)
        while len(self._last) > self.limit:
            self._last.popleft()

    def reset_stats(self) -> None:
        self.max_in_window = 0
        self.closest_seconds = None
