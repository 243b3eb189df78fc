"""The Conditional Tokens contract as Gnosis published it, and where its state lives.

The artifact comes from the npm package `@gnosis.pm/conditional-tokens-contracts` 1.0.3,
fetched by `make install` (`npm pack`); its hash is checked so that the local chain runs
exactly the published bytecode. The storage layout below was read off that bytecode by
deploying it: it lets a genesis state hold real Polymarket condition ids, which no local
`prepareCondition` can produce (an id hashes the oracle's address, and Polymarket's oracle
key is not ours), while the contract's own code still answers every call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eth_utils import keccak

PACKAGE = "@gnosis.pm/conditional-tokens-contracts@1.0.3"
DEFAULT_ARTIFACT = Path(__file__).resolve().parent.parent / "vendor" / "conditional-tokens" / "ConditionalTokens.json"
ARTIFACT_SHA256 = "08a1c8752460866482387a185ab5e1d1e3589f06a95d1322f24b5cb14bc33af8"
CTF_ADDRESS = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"  # Polymarket's CTF on Polygon

PAYOUT_NUMERATORS_SLOT = 3  # mapping(bytes32 => uint[])
PAYOUT_DENOMINATOR_SLOT = 4  # mapping(bytes32 => uint)


class ArtifactMissing(FileNotFoundError):
    """The compiled contract is not where `make install` puts it."""


@dataclass(frozen=True)
class Artifact:
    abi: list[dict]
    bytecode: bytes  # creation code
    deployed_bytecode: bytes  # runtime code, what genesis places at an address


def load_artifact(path: Path = DEFAULT_ARTIFACT) -> Artifact:
    """The published ConditionalTokens.json, refused if it is not byte for byte the release."""
    if not path.is_file():
        raise ArtifactMissing(f"{path} is missing: `make install` fetches it with `npm pack {PACKAGE}`")
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != ARTIFACT_SHA256:
        raise ValueError(f"{path} is not the published ConditionalTokens.json of {PACKAGE}")
    data = json.loads(raw)
    return Artifact(data["abi"], bytes.fromhex(data["bytecode"][2:]), bytes.fromhex(data["deployedBytecode"][2:]))


@dataclass(frozen=True)
class SeededCondition:
    """A condition placed in genesis storage: prepared with `slots` outcomes, resolved when
    `numerators` is given (the denominator is their sum, as `reportPayouts` sets it)."""

    condition_id: bytes
    slots: int
    numerators: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.condition_id) != 32 or self.slots < 1:
            raise ValueError("a condition id is 32 bytes and a prepared condition has at least one slot")
        if self.numerators is not None and (len(self.numerators) != self.slots or not any(self.numerators)):
            raise ValueError("a resolved condition has one numerator per slot, not all zero")


def _mapping_slot(key: bytes, slot: int) -> int:
    """Solidity's place for `mapping[key]` when the mapping is declared at `slot`."""
    return int.from_bytes(keccak(key + slot.to_bytes(32, "big")), "big")


def genesis_storage(conditions: Iterable[SeededCondition]) -> dict[int, int]:
    """Storage words that make the contract hold `conditions` exactly as its transactions would.

    `payoutNumerators[id]` is a dynamic array: its length (the outcome slot count) at the
    mapping slot, its elements from keccak(that slot) on; `payoutDenominator[id]` is a word.
    """
    storage: dict[int, int] = {}
    for condition in conditions:
        length_slot = _mapping_slot(condition.condition_id, PAYOUT_NUMERATORS_SLOT)
        storage[length_slot] = condition.slots
        if condition.numerators is None:
            continue
        first = int.from_bytes(keccak(length_slot.to_bytes(32, "big")), "big")
        for index, numerator in enumerate(condition.numerators):
            if numerator:
                storage[first + index] = numerator
        storage[_mapping_slot(condition.condition_id, PAYOUT_DENOMINATOR_SLOT)] = sum(condition.numerators)
    return storage
