"""Processes and ports the tests start or need: a free loopback port, stopping a process group,
the replica's admin endpoint, and a scripted upstream that answers anything."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import urllib.request
from dataclasses import dataclass

from aiohttp import web


def free_port() -> int:
    """A loopback port nothing listens on (now): for a server to start, or to be refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def replica_admin(url: str, path: str, body: dict | None = None) -> dict:
    """POST (with a body) or GET one of a replica process's admin or stats endpoints."""
    base = url.split("/subgraphs/")[0]
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def stop_group(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process group (the server's code servers and run workers too), then SIGKILL."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever of the group outlived its parent
    except ProcessLookupError:
        pass
    process.wait(timeout=grace)


@dataclass
class ScriptedAnswer:
    status: int = 200
    headers: dict[str, str] | None = None
    body: bytes = b""


class ScriptedUpstream:
    """A loopback HTTP server answering every POST with `answer`: any status, headers and bytes,
    which no graph-node (nor the replica) would send, for the property tests of the client.

        with ScriptedUpstream() as upstream:
            upstream.answer = ScriptedAnswer(200, {"Content-Type": "text/html"}, b"<html>")
            ... GoldskyResource(url=upstream.url) ...
    """

    def __init__(self) -> None:
        self.answer = ScriptedAnswer()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="scripted-upstream", daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        answer = self.answer
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    def __enter__(self) -> "ScriptedUpstream":
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/subgraphs/name/scripted"
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
