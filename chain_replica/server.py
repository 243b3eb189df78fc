"""The local chain over HTTP JSON-RPC, with a public endpoint's limits and failures on demand.

Single calls and batches (arrays of calls) are answered; a sliding-window rate limit
answers HTTP 429 with `Retry-After`; calls can be made to fail one by one inside a batch
(`failing_ids`, `call_error_rate`) the way a loaded node answers some calls of a batch
with errors and the rest with results.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import Any

from aiohttp import web

from subgraph_replica.faults import SlidingWindow
from subgraph_replica.off_loop import OffLoop
from subgraph_replica.server import json_object

from .chain import LocalChain
from .rpc import RpcError, RpcMethods

TRANSIENT_ERROR = {"code": -32000, "message": "header not found"}  # what a node behind its peers says


@dataclass(frozen=True)
class ChainSettings:
    """Behaviour tests and the demo set at start and change at runtime."""

    rate_limit: int | None = None  # HTTP requests accepted per window
    window_seconds: float = 10.0
    max_batch: int | None = None  # calls per batch; more is refused whole
    max_log_blocks: int | None = None  # blocks per eth_getLogs
    call_error_rate: float = 0.0  # share of calls answered with a transient error
    call_error_seed: int = 0
    failing_ids: dict[str, int] = field(default_factory=dict)  # condition id hex -> failures left (-1: always)

    def updated(self, **changes: Any) -> ChainSettings:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        return replace(self, **changes)


class ChainState:
    """The chain, its RPC methods, limits and the counters tests assert on."""

    def __init__(self, chain: LocalChain, settings: ChainSettings) -> None:
        self.chain = chain
        self.methods = RpcMethods(chain)
        self.settings = settings
        self.off_loop = OffLoop()  # the chain's work, a batch at a time: the event loop keeps counting arrivals
        self._apply()
        self.reset_stats()

    def configure(self, **changes: Any) -> None:
        """Change behaviour now: error injection restarts its seeded generator, a rate limit its window."""
        self.settings = self.settings.updated(**changes)
        self._apply()

    def _apply(self) -> None:
        self.failing = {i.lower().removeprefix("0x"): n for i, n in self.settings.failing_ids.items()}
        self.rng = random.Random(self.settings.call_error_seed)
        self.methods.max_log_blocks = self.settings.max_log_blocks
        self.window = SlidingWindow(self.settings.rate_limit, self.settings.window_seconds)

    def reset_stats(self) -> None:
        self.requests = self.accepted = self.rate_limited = self.call_errors = self.largest_batch = 0
        self.calls: Counter[str] = Counter()
        self.window.reset_stats()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "accepted": self.accepted, "rate_limited": self.rate_limited,
            "calls": dict(self.calls), "call_errors": self.call_errors, "largest_batch": self.largest_batch,
            "max_in_window": self.window.max_in_window, "head": self.chain.head(),
        }

    def _injected_error(self, call: dict[str, Any]) -> bool:
        params = call.get("params")
        text = str(params).lower() if self.failing else ""
        for condition_id, left in self.failing.items():
            if left != 0 and condition_id in text:
                self.failing[condition_id] = left - 1 if left > 0 else left
                return True
        return bool(self.settings.call_error_rate) and self.rng.random() < self.settings.call_error_rate

    def answer(self, call: object) -> dict[str, Any]:
        """One JSON-RPC call's answer (a result or an error object), never an exception."""
        if not isinstance(call, dict) or call.get("jsonrpc") != "2.0" or "method" not in call:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": call.get("id")}
        self.calls[str(call["method"])[:40]] += 1
        if self._injected_error(call):
            self.call_errors += 1
            return {**reply, "error": TRANSIENT_ERROR}
        try:
            reply["result"] = self.methods.dispatch(call["method"], call.get("params", []))
        except RpcError as error:
            reply["error"] = {"code": error.code, "message": error.message}
        return reply


STATE = web.AppKey("state", ChainState)


def _refusal(status: int, message: str, retry_after: float | None = None) -> web.Response:
    headers = {} if retry_after is None else {"Retry-After": str(max(1, math.ceil(retry_after)))}
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32005 if status == 429 else -32600, "message": message}}
    return web.json_response(body, status=status, headers=headers)


async def handle_rpc(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.requests += 1
    wait = state.window.try_acquire(time.monotonic())
    if wait is not None:
        state.rate_limited += 1
        return _refusal(429, "too many requests", wait)
    state.accepted += 1
    try:
        payload = await request.json()
    except ValueError:
        return web.json_response({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
    if not isinstance(payload, list):
        return web.json_response(await state.off_loop.run(state.answer, payload))
    limit = state.settings.max_batch
    if not payload or (limit is not None and len(payload) > limit):
        return _refusal(400, f"batch of {len(payload)} calls; between 1 and {limit} accepted")
    state.largest_batch = max(state.largest_batch, len(payload))
    return web.json_response(await state.off_loop.run(lambda: [state.answer(call) for call in payload]))


async def handle_config(request: web.Request) -> web.Response:
    try:
        request.app[STATE].configure(**await json_object(request))
    except (TypeError, ValueError) as error:
        raise web.HTTPBadRequest(text=str(error)) from error
    return web.json_response({"ok": True})


async def handle_resolve(request: web.Request) -> web.Response:
    """Prepare and resolve a condition through the contract: `{question_id, numerators, timestamp}`."""
    body = await json_object(request)
    state = request.app[STATE]

    def resolve() -> dict[str, Any]:
        condition_id = state.chain.resolve(
            bytes.fromhex(str(body["question_id"]).removeprefix("0x")), [int(n) for n in body["numerators"]],
            body.get("timestamp"))
        return {"condition_id": "0x" + condition_id.hex(), "head": state.chain.head()}

    try:
        return web.json_response(await state.off_loop.run(resolve))
    except (KeyError, TypeError, ValueError) as error:
        raise web.HTTPBadRequest(text=f"cannot resolve: {error}") from error


async def handle_stats(request: web.Request) -> web.Response:
    return web.json_response(await request.app[STATE].off_loop.run(request.app[STATE].stats))


def create_app(chain: LocalChain, settings: ChainSettings | None = None) -> web.Application:
    app = web.Application()
    app[STATE] = ChainState(chain, settings or ChainSettings())
    app.router.add_get("/_stats", handle_stats)
    app.router.add_post("/_admin/config", handle_config)
    app.router.add_post("/_admin/resolve", handle_resolve)
    app.router.add_post("/{path:.*}", handle_rpc)
    return app
