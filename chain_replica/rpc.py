"""Ethereum JSON-RPC methods over a `LocalChain`, answered as a Polygon node answers them.

Only what the pipeline reads: `eth_chainId`, `eth_blockNumber`, `eth_call`, `eth_getLogs`
and `eth_getBlockByNumber`. Errors are JSON-RPC error objects with the codes public
endpoints use (-32601 unknown method, -32602 bad params, 3 reverted, -32005 over a limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .chain import LocalChain, Reverted

POLYGON_CHAIN_ID = 137


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _block_number(chain: LocalChain, tag: object) -> int:
    if tag in (None, "latest", "safe", "finalized", "pending"):
        return chain.head()
    if tag == "earliest":
        return 0
    if isinstance(tag, str) and tag.startswith("0x"):
        try:
            number = int(tag, 16)
        except ValueError:
            raise RpcError(-32602, f"invalid block number {tag[:20]!r}") from None
        if number > chain.head():
            raise RpcError(-32000, "header not found")
        return number
    raise RpcError(-32602, f"invalid block tag {str(tag)[:20]!r}")


def _log(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": entry["address"],
        "topics": list(entry["topics"]),
        "data": entry["data"],
        "blockNumber": hex(entry["block_number"]),
        "blockHash": entry["block_hash"],
        "transactionHash": entry["transaction_hash"],
        "transactionIndex": hex(entry["transaction_index"]),
        "logIndex": hex(entry["log_index"]),
        "removed": False,
    }


@dataclass
class RpcMethods:
    """The methods; `max_log_blocks` caps an `eth_getLogs` range as free endpoints do."""

    chain: LocalChain
    max_log_blocks: int | None = None

    def dispatch(self, method: str, params: list[Any]) -> Any:
        handler = getattr(self, "rpc_" + method, None) if isinstance(method, str) else None
        if handler is None:
            raise RpcError(-32601, f"the method {str(method)[:40]} does not exist/is not available")
        if not isinstance(params, list):
            raise RpcError(-32602, "params must be an array")
        try:
            return handler(*params)
        except TypeError as error:
            raise RpcError(-32602, f"invalid params: {error}") from None

    def rpc_eth_chainId(self) -> str:
        return hex(POLYGON_CHAIN_ID)

    def rpc_eth_blockNumber(self) -> str:
        return hex(self.chain.head())

    def rpc_eth_call(self, call: dict[str, Any], tag: object = "latest") -> str:
        if not isinstance(call, dict) or not isinstance(call.get("to"), str):
            raise RpcError(-32602, "invalid params: the call needs a `to` address")
        data = call.get("data", call.get("input", "0x"))
        try:
            return self.chain.call(call["to"], data, _block_number(self.chain, tag))
        except Reverted:
            raise RpcError(3, "execution reverted") from None
        except ValueError as error:
            raise RpcError(-32602, f"invalid params: {str(error)[:200]}") from None

    def rpc_eth_getBlockByNumber(self, tag: object, full: bool = False) -> dict[str, Any] | None:
        block = self.chain.block(_block_number(self.chain, tag))
        return {"number": hex(block["number"]), "hash": block["hash"], "parentHash": block["parent_hash"],
                "timestamp": hex(block["timestamp"]), "transactions": list(block["transactions"]) if not full else []}

    def rpc_eth_getLogs(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(query, dict):
            raise RpcError(-32602, "invalid params: a filter object")
        first = _block_number(self.chain, query.get("fromBlock", "latest"))
        last = _block_number(self.chain, query.get("toBlock", "latest"))
        if last < first:
            raise RpcError(-32602, f"invalid block range {first}..{last}")
        if self.max_log_blocks is not None and last - first + 1 > self.max_log_blocks:
            raise RpcError(-32005, f"block range is too large: at most {self.max_log_blocks} blocks")
        try:
            entries = self.chain.logs(first, last, query.get("address"), query.get("topics"))
        except ValueError as error:
            raise RpcError(-32602, f"invalid params: {str(error)[:200]}") from None
        return [_log(entry) for entry in entries]
