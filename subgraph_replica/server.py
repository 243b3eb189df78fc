"""aiohttp app: graph-node's HTTP behaviour plus Goldsky's rate limit, latency and faults.

GraphQL is served on every POST path not reserved below, so a client can use
a realistic `/subgraphs/name/<name>` URL; `/_stats*` and `/_admin/*` let tests
and the benchmark observe and steer the replica without being rate limited.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from .faults import HUGE_RETRY_AFTER_SECONDS, FaultInjector
from .fixtures import ConditionRow, row_from_mapping
from .state import ReplicaSettings, ReplicaState

STATE = web.AppKey("state", ReplicaState)
_MAX_BODY = 256 * 1024 * 1024  # admin upserts of a whole truth set
_GATEWAY_TEXT = {"500": "Internal Server Error", "502": "Bad Gateway",
                 "503": "Service Unavailable", "504": "Gateway Timeout"}


def _bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _rate_limited(retry_after: float | None) -> web.Response:
    headers = {} if retry_after is None else {"Retry-After": str(max(1, math.ceil(retry_after)))}
    return web.json_response({"error": "rate limited"}, status=429, headers=headers)


def _client_error(message: str) -> web.Response:
    return web.json_response({"errors": [{"message": message}]}, status=400)


def _html_page(size: int) -> str:
    """A proxy's error page, padded to `size` bytes, served with status 200."""
    head = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>"
    tail = "</p></body></html>"
    return head + "x" * max(0, size - len(head) - len(tail)) + tail


async def _oversized(request: web.Request, size: int) -> web.StreamResponse:
    """A JSON-looking body of `size` bytes, streamed without a Content-Length."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b" " * 2**16
    try:
        await response.write(b'{"data": {"conditions": [], "padding": "')
        for _ in range(size // len(chunk)):
            await response.write(chunk)
        await response.write(b'"}}')
        await response.write_eof()
    except (ConnectionError, asyncio.CancelledError):  # the client stopped reading, as it should
        pass
    return response


def _header_echo(request: web.Request) -> web.Response:
    """A proxy's complaint that echoes the request's headers, the bearer token included."""
    echoed = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
    return web.json_response({"errors": [{"message": f"bad request, headers were {echoed}"}], "data": None})


async def _fault_response(request: web.Request, kind: str, injector: FaultInjector) -> web.StreamResponse:
    """The answer for an injected fault; "drop" closes the connection with no answer at all."""
    if kind == "429":
        return _rate_limited(1.0)
    if kind == "429_no_retry_after":
        return _rate_limited(None)
    if kind == "huge_retry_after":
        return _rate_limited(HUGE_RETRY_AFTER_SECONDS)
    if kind == "graphql_error":
        return web.json_response({"errors": [{"message": "upstream store error"}], "data": None})
    if kind == "html_200":
        return web.Response(text=_html_page(injector.mix.page_bytes), content_type="text/html")
    if kind == "oversized":
        return await _oversized(request, injector.mix.oversized_bytes)
    if kind == "corrupt_answer":
        return web.json_response(injector.corrupt_answer())
    if kind == "header_echo":
        return _header_echo(request)
    if kind == "drop":
        assert request.transport is not None
        request.transport.abort()
        raise asyncio.CancelledError  # nothing can be written to an aborted connection
    return web.Response(status=int(kind), text=f"{kind} {_GATEWAY_TEXT[kind]}")


async def handle_graphql(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.requests += 1
    state.first_request_at = state.first_request_at or time.time()
    token = _bearer_token(request)
    state.bearer_seen |= bool(token)
    required = state.settings.require_token
    if required is not None and token != required:
        return web.json_response({"error": "unauthorized"}, status=401)
    wait = state.window.try_acquire(time.monotonic())
    if wait is not None:
        state.rate_limited += 1
        return _rate_limited(wait)
    state.accepted += 1
    try:
        payload = await request.json()
    except ValueError:
        return _client_error("The request body is not valid JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return _client_error('The "query" field is missing in request data')
    prepared = state.executor.prepare(payload["query"])
    variables = payload.get("variables")
    ids = prepared.requested_ids(variables if isinstance(variables, dict) else None)
    state.record_requested(ids)
    injector = state.injector
    fault = injector.draw(ids) if injector else None
    if state.settings.latency:
        await asyncio.sleep(state.settings.latency)
    if fault is not None:
        assert injector is not None
        state.faulted[fault] += 1
        if fault == "slow":
            await asyncio.sleep(injector.mix.slow_seconds)  # then answer, long after a client gave up
        elif fault != "corrupt_values":
            state.faulted_ids[fault].update(ids)
            return await _fault_response(request, fault, injector)
    operation = payload.get("operationName")

    def answer() -> dict[str, Any]:
        body = state.executor.run(prepared, variables, operation if isinstance(operation, str) else None,
                                  state.query_root())
        state.answered()
        return body

    body = await state.off_loop.run(answer)
    if fault == "corrupt_values" and isinstance(body.get("data"), dict):
        assert injector is not None
        state.faulted_ids[fault].update(injector.corrupt_values(body["data"].get("conditions") or []))
    return web.json_response(body)


async def json_object(request: web.Request) -> dict[str, Any]:
    """An admin request's JSON object body, or HTTP 400."""
    try:
        body = await request.json()
    except ValueError as error:
        raise web.HTTPBadRequest(text=f"invalid JSON: {error}") from error
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def handle_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].stats())


async def handle_stats_ids(request: web.Request) -> web.Response:
    state = request.app[STATE]
    faulted = {kind: sorted(ids) for kind, ids in state.faulted_ids.items()}
    return web.json_response({"ids": dict(state.ids_requested()), "faulted": faulted})


async def handle_stats_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset_stats()
    return web.json_response({"ok": True})


async def handle_upsert(request: web.Request) -> web.Response:
    body = await json_object(request)
    try:
        rows = [row_from_mapping(item) for item in body.get("rows", [])]
    except (KeyError, TypeError, ValueError) as error:
        raise web.HTTPBadRequest(text=f"invalid rows: {error!r}") from error
    state = request.app[STATE]
    await state.off_loop.run(state.upsert, rows)
    return web.json_response({"upserted": len(rows), "block": state.query_root().block_number})


async def handle_config(request: web.Request) -> web.Response:
    body = await json_object(request)
    try:
        request.app[STATE].configure(**body)
    except (TypeError, ValueError) as error:
        raise web.HTTPBadRequest(text=str(error)) from error
    return web.json_response({"ok": True})


def create_app(rows: Iterable[ConditionRow], schema: str = "pnl",
               settings: ReplicaSettings | None = None,
               cpu_clock: Callable[[], float] = time.thread_time) -> web.Application:
    """The replica app; /_stats reports as its CPU time `cpu_clock` (the event loop's thread's)
    plus the work done off the loop."""
    app = web.Application(client_max_size=_MAX_BODY)
    app[STATE] = ReplicaState(rows, schema, settings or ReplicaSettings(), cpu_clock)
    app.router.add_get("/_stats", handle_stats)
    app.router.add_get("/_stats/ids", handle_stats_ids)
    app.router.add_post("/_stats/reset", handle_stats_reset)
    app.router.add_post("/_admin/conditions", handle_upsert)
    app.router.add_post("/_admin/config", handle_config)
    app.router.add_post("/{path:.*}", handle_graphql)
    return app


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Listen on host:port (0: any free port); the runner's cleanup cancels stalled handlers."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, runner.addresses[0][1]


async def serve_until_stopped(runner: web.AppRunner, url: str, port_file: Path | None) -> None:
    """Announce `url` on stdout and, atomically, in `port_file`; serve until SIGTERM or SIGINT."""
    print(f"listening on {url}", flush=True)
    if port_file:
        partial = port_file.with_name(port_file.name + ".tmp")
        partial.write_text(url + "\n")
        os.replace(partial, port_file)  # readers never see a half-written file
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def replica_url(host: str, port: int, schema: str) -> str:
    return f"http://{host}:{port}/subgraphs/name/{schema}"
