"""The replica's mutable state: data, behaviour settings and the statistics tests assert on.

It is touched from the server's event loop thread, and by one piece of work at a time off
it (`OffLoop`: a query's answer, an upsert); other threads reach it through
`ReplicaServer`.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from .execution import QueryExecutor
from .faults import FaultInjector, FaultMix, SlidingWindow
from .fixtures import ConditionRow
from .off_loop import OffLoop
from .schema import QueryRoot, build_replica_schema
from .store import ConditionStore


@dataclass(frozen=True)
class ReplicaSettings:
    """Behaviour that tests and the benchmark set at start and change at runtime."""

    rate_limit: int | None = None
    window_seconds: float = 10.0
    latency: float = 0.0
    faults: FaultMix | None = None
    has_indexing_errors: bool = False
    meta_block: int | None = None  # None: the highest change_block held
    meta_timestamp: int | None = None  # None: the current time
    inject_unrequested: int = 0
    require_token: str | None = None  # None: any or no Authorization is fine
    history_from_block: int = 0  # graph-node's pruning: `block:` arguments below it are refused

    def updated(self, **changes: Any) -> ReplicaSettings:
        """A copy with `changes`; `faults` may be a FaultMix, a JSON dict or None."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        if isinstance(changes.get("faults"), dict):
            changes["faults"] = FaultMix.from_mapping(changes["faults"])
        return replace(self, **changes)


class ReplicaState:
    """One replica: its entities, settings, limiter, fault generator and counters."""

    def __init__(self, rows: Iterable[ConditionRow], schema: str, settings: ReplicaSettings,
                 cpu_clock: Callable[[], float]) -> None:
        self.schema_name = schema
        self.executor = QueryExecutor(build_replica_schema(schema))
        self.store = ConditionStore(rows)
        self.deployment = "Qm" + hashlib.sha256(schema.encode()).hexdigest()[:44]
        self.cpu_clock = cpu_clock
        self.off_loop = OffLoop()  # answers and upserts: the event loop keeps counting arrivals
        self.settings = settings
        self.window = SlidingWindow(settings.rate_limit, settings.window_seconds)
        self.injector = FaultInjector(settings.faults) if settings.faults else None
        self.answers = 0  # requests answered since start; unlike the stats, never reset
        self.scheduled: list[tuple[int, list[ConditionRow]]] = []  # (answers, rows)
        self.reset_stats()

    def configure(self, **changes: Any) -> None:
        """Change behaviour now; a new fault mix restarts its seeded generator."""
        self.settings = self.settings.updated(**changes)
        self.window.limit = self.settings.rate_limit
        self.window.seconds = self.settings.window_seconds
        if "faults" in changes:
            faults = self.settings.faults
            self.injector = FaultInjector(faults) if faults else None

    def upsert(self, rows: Sequence[ConditionRow]) -> None:
        """Replace entities by id; the indexed block moves up to the newest change."""
        self.store.upsert(rows)
        if self.settings.meta_block is not None and rows:
            newest = max(row.change_block for row in rows)
            self.settings = replace(self.settings, meta_block=max(self.settings.meta_block, newest))

    def upsert_after(self, requests: int, rows: Sequence[ConditionRow]) -> None:
        """Upsert `rows` once `requests` more requests have been answered: the chain moving on
        while a client reads, at a moment a test chooses."""
        self.scheduled.append((self.answers + requests, list(rows)))

    def answered(self) -> None:
        """A request was answered: apply the upserts scheduled for this moment."""
        self.answers += 1
        due = [rows for at, rows in self.scheduled if at <= self.answers]
        self.scheduled = [(at, rows) for at, rows in self.scheduled if at > self.answers]
        for rows in due:
            self.upsert(rows)

    def query_root(self) -> QueryRoot:
        settings = self.settings
        return QueryRoot(
            store=self.store,
            block_number=self.store.head_block if settings.meta_block is None else settings.meta_block,
            block_timestamp=int(time.time()) if settings.meta_timestamp is None else settings.meta_timestamp,
            deployment=self.deployment,
            has_indexing_errors=settings.has_indexing_errors,
            inject_unrequested=settings.inject_unrequested,
            history_from_block=settings.history_from_block,
        )

    def reset_stats(self) -> None:
        self.requests = 0
        self.first_request_at: float | None = None  # epoch seconds: when the first request since the reset arrived
        self.accepted = 0
        self.rate_limited = 0
        self.faulted: Counter[str] = Counter()
        # The ids each kind hit: a request's ids, or for corrupt_values the entities corrupted.
        self.faulted_ids: defaultdict[str, set[str]] = defaultdict(set)
        self.batches_requested: list[list[str]] = []
        self.ids_requested_total = 0
        self.bearer_seen = False
        self.window.reset_stats()

    def record_requested(self, ids: list[str]) -> None:
        # O(1) per request: a request counted late by the rate window draws a 429 a window later.
        # A Counter of ids, updated here, held the event loop for each of its resizes (49 ms at
        # 700,000 ids); a total summed in /_stats, which the bench polls every 50 ms, for 15 ms.
        self.batches_requested.append(ids)
        self.ids_requested_total += len(ids)

    def ids_requested(self) -> Counter[str]:
        """How many times each id was asked for, counted when a test or the bench asks."""
        return Counter(itertools.chain.from_iterable(self.batches_requested))

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "first_request_at": self.first_request_at,
            "accepted": self.accepted,
            "rate_limited": self.rate_limited,
            "faulted": dict(self.faulted),
            "ids_requested": self.ids_requested_total,
            "max_in_window": self.window.max_in_window,
            "closest_to_limit_seconds": self.window.closest_seconds,
            "cpu_seconds": self.cpu_clock() + self.off_loop.cpu_seconds,
            "bearer_seen": self.bearer_seen,
        }
