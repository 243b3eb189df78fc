"""A local chain that runs the real Conditional Tokens bytecode (eth-tester over py-evm).

Real Polymarket ids are placed in genesis storage (see `contract`); conditions prepared
and resolved through the contract's own `prepareCondition` and `reportPayouts`
transactions also emit the `ConditionResolution` event, in a block whose timestamp the
caller chooses, so resolution times can be read back as they are on Polygon.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eth_abi import encode
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import get_default_account_keys
from eth_tester.exceptions import TransactionFailed, ValidationError
from eth_utils import function_signature_to_4byte_selector, keccak, to_canonical_address, to_checksum_address

from .contract import CTF_ADDRESS, Artifact, SeededCondition, genesis_storage, load_artifact

GENESIS_TIMESTAMP = 1_600_000_000  # 2020-09-13, about when Polymarket's CTF was deployed
TRANSACTION_GAS = 1_000_000
BLOCK_SECONDS = 2


class Reverted(Exception):
    """The contract reverted (or hit an invalid opcode) on a call."""


def default_oracle() -> str:
    """The address of the chain's first account, eth-tester's first default key: the oracle
    of every condition a `LocalChain` prepares."""
    return to_checksum_address(get_default_account_keys(1)[0].public_key.to_canonical_address())


def derived_condition_id(oracle: str, question_id: bytes, slots: int) -> bytes:
    """The contract's `getConditionId`: keccak(oracle . questionId . outcomeSlotCount)."""
    return keccak(to_canonical_address(oracle) + question_id + slots.to_bytes(32, "big"))


def _calldata(signature: str, types: Sequence[str], values: Sequence[Any]) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, values)).hex()


class LocalChain:
    """One chain; the CTF lives at Polymarket's address, and the first account is the oracle.

        chain = LocalChain([SeededCondition(bytes.fromhex(cid), 2, (1, 0))])
        condition_id = chain.resolve(b"q" * 32, [0, 1], timestamp=1_700_000_000)
    """

    def __init__(self, seeds: Iterable[SeededCondition] = (), artifact: Artifact | None = None,
                 genesis_timestamp: int = GENESIS_TIMESTAMP) -> None:
        artifact = artifact or load_artifact()
        state = PyEVMBackend.generate_genesis_state(num_accounts=1)
        state[to_canonical_address(CTF_ADDRESS)] = {
            "balance": 0, "nonce": 1, "code": artifact.deployed_bytecode, "storage": genesis_storage(seeds),
        }
        params = PyEVMBackend.generate_genesis_params({"timestamp": genesis_timestamp})
        self._backend = PyEVMBackend(genesis_parameters=params, genesis_state=state)
        self._tester = EthereumTester(self._backend)
        self.oracle: str = self._tester.get_accounts()[0]

    # Reading, as eth_call, eth_getLogs and eth_getBlockByNumber answer.

    def head(self) -> int:
        """The newest mined block."""
        return int(self._tester.get_block_by_number("latest")["number"])

    def call(self, to: str, data: str, block: int | str = "latest") -> str:
        """The return data of a read-only call, as 0x hex."""
        try:
            return self._tester.call({"from": self.oracle, "to": to, "data": data}, block)
        except TransactionFailed as failure:
            raise Reverted(str(failure)) from None
        except ValidationError as error:  # eth-tester's own, not a ValueError
            raise ValueError(str(error)) from None

    def block(self, number: int | str) -> dict[str, Any]:
        return self._tester.get_block_by_number(number)

    def logs(self, from_block: int, to_block: int, address: str | None,
             topics: list[str | list[str] | None] | None) -> tuple[dict[str, Any], ...]:
        try:
            return self._tester.get_logs(from_block=from_block, to_block=to_block, address=address, topics=topics)
        except ValidationError as error:
            raise ValueError(str(error)) from None

    # Writing, through the contract's own transactions.

    def _transact(self, data: str) -> dict[str, Any]:
        tx = self._tester.send_transaction({"from": self.oracle, "to": CTF_ADDRESS, "gas": TRANSACTION_GAS, "data": data})
        receipt = self._tester.get_transaction_receipt(tx)
        if receipt["status"] != 1:
            raise Reverted(f"transaction {tx} reverted")
        return receipt

    def _at(self, timestamp: int | None) -> None:
        """Mine the next block at `timestamp` (eth-tester's own time travel refuses any time
        before the wall clock; the chain only needs it after its parent)."""
        if timestamp is None:
            return
        parent = int(self.block("latest")["timestamp"])
        if timestamp <= parent:
            raise ValueError(f"block time {timestamp} is not after its parent's {parent}")
        self._backend.chain.header = self._backend.chain.header.copy(timestamp=timestamp)

    def prepare(self, question_id: bytes, slots: int, timestamp: int | None = None) -> bytes:
        """`prepareCondition(oracle, question_id, slots)`; returns the condition id."""
        self._at(timestamp)
        self._transact(_calldata("prepareCondition(address,bytes32,uint256)", ("address", "bytes32", "uint256"),
                                 (self.oracle, question_id, slots)))
        return derived_condition_id(self.oracle, question_id, slots)

    def report(self, question_id: bytes, numerators: Sequence[int], timestamp: int | None = None) -> int:
        """`reportPayouts(question_id, numerators)` from the oracle; returns its block number."""
        self._at(timestamp)
        receipt = self._transact(_calldata("reportPayouts(bytes32,uint256[])", ("bytes32", "uint256[]"),
                                           (question_id, list(numerators))))
        return int(receipt["block_number"])

    def resolve(self, question_id: bytes, numerators: Sequence[int], timestamp: int | None = None) -> bytes:
        """Prepare and resolve a condition, the resolution in a block at `timestamp`."""
        prepared_at = None if timestamp is None else timestamp - 1
        condition_id = self.prepare(question_id, len(numerators), prepared_at)
        self.report(question_id, numerators, timestamp)
        return condition_id

    def mine(self, blocks: int) -> None:
        """Empty blocks two seconds apart (Polygon's pace), so that scans cross several block ranges."""
        for _ in range(blocks):
            self._at(int(self.block("latest")["timestamp"]) + BLOCK_SECONDS)
            self._tester.mine_blocks(1)
