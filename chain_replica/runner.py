"""`ChainServer`: the local chain on a loopback port in a background thread, for tests.

The EVM and the HTTP server share one event loop in a daemon thread; the test thread
reaches the chain only through that loop, so nothing touches it from two threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from subgraph_replica.loop_thread import LoopThread
from subgraph_replica.server import start_site

from .chain import LocalChain
from .contract import SeededCondition
from .server import STATE, ChainSettings, ChainState, create_app

T = TypeVar("T")


class ChainServer:
    """`with ChainServer(seeds, max_batch=50) as chain: ... chain.url` (settings as `ChainSettings`)."""

    def __init__(self, seeds: Iterable[SeededCondition] = (), host: str = "127.0.0.1", **settings: Any) -> None:
        self._seeds = list(seeds)
        self._settings = ChainSettings().updated(**settings)
        self._host = host
        self._loop = LoopThread("chain-replica")
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/"

    def __enter__(self) -> ChainServer:
        self._loop.start()

        async def start() -> tuple[web.AppRunner, int]:
            self._app = create_app(LocalChain(self._seeds), self._settings)
            return await start_site(self._app, self._host, 0)

        self._runner, self.port = self._loop.run(start())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._runner is not None:
            self._loop.run(self._runner.cleanup())
        self._loop.stop()

    def _on_loop(self, action: Callable[[ChainState], T]) -> T:
        async def call() -> T:
            assert self._app is not None
            return action(self._app[STATE])
        return self._loop.run(call())

    def stats(self) -> dict[str, Any]:
        return self._on_loop(lambda state: state.stats())

    def reset_stats(self) -> None:
        self._on_loop(lambda state: state.reset_stats())

    def configure(self, **changes: Any) -> None:
        """Same keys as ChainSettings (and POST /_admin/config)."""
        self._on_loop(lambda state: state.configure(**changes))

    def resolve(self, question_id: bytes, numerators: Sequence[int], timestamp: int | None = None) -> str:
        """Prepare and resolve through the contract's transactions; the condition id as 64 hex."""
        return self._on_loop(lambda state: state.chain.resolve(question_id, numerators, timestamp)).hex()

    def prepare(self, question_id: bytes, slots: int) -> str:
        return self._on_loop(lambda state: state.chain.prepare(question_id, slots)).hex()

    def mine(self, blocks: int) -> None:
        self._on_loop(lambda state: state.chain.mine(blocks))

    def head(self) -> int:
        return self._on_loop(lambda state: state.chain.head())

    def block_timestamp(self, number: int) -> int:
        return int(self._on_loop(lambda state: state.chain.block(number))["timestamp"])
