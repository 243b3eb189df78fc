"""Gnosis' Conditional Tokens contract read over JSON-RPC: payouts and resolution events.

Calls are encoded and answers decoded by eth-abi from the contract's public getters;
nothing here knows the contract's storage. A condition costs two calls
(`getOutcomeSlotCount`, `payoutDenominator`) plus, once resolved, one `payoutNumerators`
call per outcome slot: four for Polymarket's binary markets.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from payout_assets.core.subgraph import RequestStats
from payout_assets.resources.rpc_client import RpcCall, RpcClient, RpcResult
from payout_assets.settings import POLYMARKET_CTF

MAX_OUTCOME_SLOTS = 256  # prepareCondition refuses more, so a larger count is a broken answer
# keccak256("ConditionResolution(bytes32,address,bytes32,uint256,uint256[])"), the event's topic.
RESOLUTION_TOPIC = "0xb44d84d3289691f71497564b85d4233648d9dbae8cbdbb4329f301c3a0185894"

UNKNOWN, UNRESOLVED, RESOLVED, FAILED = "unknown", "unresolved", "resolved", "failed"


class MalformedAnswer(ValueError):
    """The endpoint answered with something the contract cannot have returned."""


@dataclass(frozen=True)
class ChainCondition:
    """What the contract holds for one condition id (64 hex): `unknown` (never prepared),
    `unresolved`, `resolved` with its payout, or `failed` with the reason."""

    condition_id: str
    state: str
    numerators: tuple[int, ...] = ()
    denominator: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class Resolution:
    """A `ConditionResolution` event: which condition, in which block."""

    condition_id: str
    block_number: int


# eth-abi is imported where it is used: importing it takes 0.23 s (eth-utils reads its list
# of networks), which every run and every load of the code location paid with the chain off.


def _call_data(signature: str, types: Sequence[str], values: Sequence[object]) -> str:
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, values)).hex()


def _uint(answer: RpcResult) -> int:
    from eth_abi import decode
    from eth_abi.exceptions import DecodingError

    if answer.error is not None:
        raise MalformedAnswer(answer.error)
    try:
        return decode(["uint256"], bytes.fromhex(str(answer.result).removeprefix("0x")))[0]
    except (ValueError, DecodingError):
        raise MalformedAnswer(f"{str(answer.result)[:80]!r} is not a uint256") from None


def _hex_int(value: object, what: str) -> int:
    try:
        return int(str(value), 16)
    except ValueError:
        raise MalformedAnswer(f"{what} {str(value)[:40]!r} is not a hex number") from None


class ConditionalTokens:
    """The contract at `address`, through a client the caller opened.

        async with RpcClient(url, limiter) as client:
            conditions, stats = await ConditionalTokens(client, POLYMARKET_CTF).conditions(ids)
    """

    def __init__(self, client: RpcClient, address: str = POLYMARKET_CTF) -> None:
        self._client = client
        self._address = address

    def _call(self, signature: str, types: Sequence[str], values: Sequence[object]) -> RpcCall:
        return RpcCall("eth_call", [{"to": self._address, "data": _call_data(signature, types, values)}, "latest"])

    async def conditions(self, ids: Sequence[str]) -> tuple[dict[str, ChainCondition], RequestStats]:
        """Every id's state on chain; one entry per id, whatever the endpoint answers."""
        stats = RequestStats()
        keys = {cid: bytes.fromhex(cid) for cid in ids}
        calls = [self._call(sig, ["bytes32"], [key]) for key in keys.values()
                 for sig in ("getOutcomeSlotCount(bytes32)", "payoutDenominator(bytes32)")]
        answers, cost = await self._client.call_all(calls)
        stats.add(cost)
        found: dict[str, ChainCondition] = {}
        resolved: dict[str, tuple[int, int]] = {}
        for position, cid in enumerate(keys):
            try:
                slots, denominator = _uint(answers[2 * position]), _uint(answers[2 * position + 1])
                if slots > MAX_OUTCOME_SLOTS:
                    raise MalformedAnswer(f"an outcome slot count of {slots}")
            except MalformedAnswer as problem:
                found[cid] = ChainCondition(cid, FAILED, reason=str(problem))
                continue
            if slots == 0:
                found[cid] = ChainCondition(cid, UNKNOWN)
            elif denominator == 0:
                found[cid] = ChainCondition(cid, UNRESOLVED)
            else:
                resolved[cid] = (slots, denominator)
        calls = [self._call("payoutNumerators(bytes32,uint256)", ["bytes32", "uint256"], [keys[cid], i])
                 for cid, (slots, _) in resolved.items() for i in range(slots)]
        answers, cost = await self._client.call_all(calls)
        stats.add(cost)
        position = 0
        for cid, (slots, denominator) in resolved.items():
            try:
                numerators = tuple(_uint(answer) for answer in answers[position : position + slots])
                if sum(numerators) != denominator:
                    raise MalformedAnswer(f"numerators {list(numerators)} do not sum to the denominator {denominator}")
                found[cid] = ChainCondition(cid, RESOLVED, numerators, denominator)
            except MalformedAnswer as problem:
                found[cid] = ChainCondition(cid, FAILED, reason=str(problem))
            position += slots
        return {cid: found[cid] for cid in ids}, stats

    async def head(self) -> int:
        """The endpoint's newest block number."""
        [answer], _ = await self._client.call_all([RpcCall("eth_blockNumber", [])])
        if answer.error is not None:
            raise MalformedAnswer(f"no block number: {answer.error}")
        return _hex_int(answer.result, "block number")

    async def resolutions(self, ranges: Iterable[tuple[int, int]]) -> tuple[list[Resolution], RequestStats]:
        """The contract's `ConditionResolution` events in each inclusive block range (one
        `eth_getLogs` per range); raises if any range stays unanswered, so a cursor never
        moves past blocks that were not read."""
        ranges = list(ranges)
        calls = [RpcCall("eth_getLogs", [{"address": self._address, "topics": [RESOLUTION_TOPIC],
                                          "fromBlock": hex(first), "toBlock": hex(last)}]) for first, last in ranges]
        answers, stats = await self._client.call_all(calls)
        events = []
        for (first, last), answer in zip(ranges, answers):
            if answer.error is not None or not isinstance(answer.result, list):
                raise MalformedAnswer(f"no logs for blocks {first}..{last}: {answer.error or 'not a list'}")
            for log in answer.result:
                topics = log.get("topics") if isinstance(log, dict) else None
                if not isinstance(topics, list) or len(topics) < 2 or topics[0] != RESOLUTION_TOPIC:
                    continue  # not this event: an endpoint that ignores the filter
                block = _hex_int(log.get("blockNumber"), "block number")
                condition_id = str(topics[1]).lower().removeprefix("0x")
                if first <= block <= last and len(condition_id) == 64:
                    events.append(Resolution(condition_id, block))
        return events, stats

    async def block_timestamps(self, blocks: Iterable[int]) -> tuple[dict[int, int], RequestStats]:
        """Unix time of each block, from `eth_getBlockByNumber`."""
        numbers = sorted(set(blocks))
        answers, stats = await self._client.call_all([RpcCall("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        times = {}
        for number, answer in zip(numbers, answers):
            if answer.error is not None or not isinstance(answer.result, dict):
                raise MalformedAnswer(f"no block {number}: {answer.error or 'not a block'}")
            times[number] = _hex_int(answer.result.get("timestamp"), "timestamp")
        return times, stats
