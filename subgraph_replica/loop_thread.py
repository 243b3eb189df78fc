"""An event loop in a daemon thread, so a local server runs beside synchronous tests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

TIMEOUT_SECONDS = 60.0


class LoopThread:
    """Runs coroutines from any thread on its own loop: state that lives on the loop is
    only ever touched from the loop's thread."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def run(self, coroutine: Any) -> Any:
        """The coroutine's result, computed on the loop."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(TIMEOUT_SECONDS)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT_SECONDS)
        self._loop.close()
