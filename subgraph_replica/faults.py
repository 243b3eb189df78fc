"""Upstream misbehaviour: Goldsky's sliding-window rate limit and reproducible injected faults."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

FAULT_KINDS = ("429", "429_no_retry_after", "500", "502", "503", "504", "slow", "drop",
               "graphql_error")


@dataclass(frozen=True)
class FaultMix:
    """Which share of requests fail and how; `id_prefixes` confines faults to one shard's ids."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 30.0
    id_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {FAULT_KINDS}")

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

    def draw(self, ids: Sequence[str]) -> str | None:
        """The fault kind for a request asking for `ids`, or None to answer it normally."""
        prefixes = self.mix.id_prefixes
        if prefixes and not (ids and all(i.startswith(prefixes) for i in ids)):
            return None
        if self._rng.random() >= self.mix.rate:
            return None
        return self._rng.choice(self.mix.kinds)


class SlidingWindow:
    """At most `limit` accepted requests in any `seconds`-long window; refusals do not count."""

    def __init__(self, limit: int | None, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.max_in_window = 0
        self._accepted: deque[float] = deque()

    def try_acquire(self, now: float) -> float | None:
        """Accept (returns None) or refuse with the seconds until a slot frees."""
        accepted = self._accepted
        while accepted and accepted[0] <= now - self.seconds:
            accepted.popleft()
        if self.limit is not None and len(accepted) >= self.limit:
            return accepted[len(accepted) - self.limit] + self.seconds - now
        accepted.append(now)
        self.max_in_window = max(self.max_in_window, len(accepted))
        return None

    def reset_stats(self) -> None:
        self.max_in_window = 0
