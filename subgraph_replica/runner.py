"""`ReplicaServer`: the replica on a loopback port in a background thread, for tests.

The server has its own event loop in a daemon thread, so synchronous and
asynchronous clients in the test thread talk to it over real HTTP. The Python
helpers run on that loop (never touching state from the test thread), which
also makes `cpu_seconds` the server's own CPU time: its loop thread's and its answers'.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from .faults import FaultMix
from .loop_thread import LoopThread
from .fixtures import ConditionRow
from .server import STATE, create_app, replica_url, start_site
from .state import ReplicaSettings, ReplicaState

T = TypeVar("T")


class ReplicaServer:
    """Context manager: `with ReplicaServer(rows, rate_limit=3) as replica: ... replica.url`."""

    def __init__(self, rows: Iterable[ConditionRow], schema: str = "pnl", *,
                 rate_limit: int | None = None, window_seconds: float = 10.0,
                 latency: float = 0.0, faults: FaultMix | dict[str, Any] | None = None,
                 has_indexing_errors: bool = False, meta_block: int | None = None,
                 meta_timestamp: int | None = None, inject_unrequested: int = 0,
                 require_token: str | None = None, host: str = "127.0.0.1") -> None:
        settings = ReplicaSettings().updated(
            rate_limit=rate_limit, window_seconds=window_seconds, latency=latency, faults=faults,
            has_indexing_errors=has_indexing_errors, meta_block=meta_block,
            meta_timestamp=meta_timestamp, inject_unrequested=inject_unrequested,
            require_token=require_token)
        self._app = create_app(rows, schema, settings)
        self._schema = schema
        self._host = host
        self._loop = LoopThread("subgraph-replica")
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def url(self) -> str:
        return replica_url(self._host, self.port, self._schema)

    def __enter__(self) -> ReplicaServer:
        self._loop.start()
        self._runner, self.port = self._await(start_site(self._app, self._host, 0))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._runner is not None:
            self._await(self._runner.cleanup())
        self._loop.stop()

    def _await(self, coroutine: Any) -> Any:
        return self._loop.run(coroutine)

    def _on_loop(self, action: Callable[[ReplicaState], T]) -> T:
        async def call() -> T:
            state = self._app[STATE]
            async with state.off_loop.busy:  # never beside an answer being computed
                return action(state)
        return self._await(call())

    def stats(self) -> dict[str, Any]:
        return self._on_loop(lambda state: state.stats())

    def requested_ids(self) -> dict[str, int]:
        return self._on_loop(lambda state: dict(state.ids_requested()))

    def faulted_ids(self) -> dict[str, set[str]]:
        """For each fault kind served, the ids it hit (for corrupt_values, the ids corrupted)."""
        return self._on_loop(lambda state: {kind: set(ids) for kind, ids in state.faulted_ids.items()})

    def reset_stats(self) -> None:
        self._on_loop(lambda state: state.reset_stats())

    def upsert(self, rows: Iterable[ConditionRow]) -> None:
        rows = list(rows)
        self._on_loop(lambda state: state.upsert(rows))

    def upsert_after(self, requests: int, rows: Iterable[ConditionRow]) -> None:
        """Upsert `rows` right after the replica has answered `requests` more requests."""
        rows = list(rows)
        self._on_loop(lambda state: state.upsert_after(requests, rows))

    def configure(self, **changes: Any) -> None:
        """Same keys as ReplicaSettings (and POST /_admin/config); `faults` may be a dict."""
        self._on_loop(lambda state: state.configure(**changes))
