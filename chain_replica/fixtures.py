"""Genesis seeds as CSV (`condition_id,slots,payout_numerators`), and from a subgraph truth;
resolutions to make through the contract's transactions as CSV (`question_id,payout_numerators,timestamp`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from subgraph_replica.fixtures import ConditionRow

from .chain import default_oracle, derived_condition_id
from .contract import SeededCondition

FIELDS = ("condition_id", "slots", "payout_numerators")


def load_seeds(path: str | Path) -> list[SeededCondition]:
    """Read a seed CSV; `payout_numerators` is a JSON list, empty while unresolved."""
    with open(path, newline="") as handle:
        return [
            SeededCondition(
                bytes.fromhex(record["condition_id"].removeprefix("0x")),
                int(record["slots"]),
                tuple(json.loads(record["payout_numerators"])) if record["payout_numerators"] else None,
            )
            for record in csv.DictReader(handle)
        ]


def write_seeds(path: str | Path, seeds: Iterable[SeededCondition]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for seed in seeds:
            numerators = json.dumps(list(seed.numerators)) if seed.numerators is not None else ""
            writer.writerow((seed.condition_id.hex(), seed.slots, numerators))


def seeds_from_rows(rows: Iterable[ConditionRow], slots: int = 2) -> list[SeededCondition]:
    """The chain state a subgraph truth indexes: its resolved payouts and its prepared conditions."""
    seeds = []
    for row in rows:
        resolved = row.payout_denominator not in ("", "0")
        numerators = tuple(int(n) for n in row.payout_numerators) if resolved else None
        seeds.append(SeededCondition(bytes.fromhex(row.id.removeprefix("0x")), len(numerators or ()) or slots, numerators))
    return seeds


@dataclass(frozen=True)
class PlannedResolution:
    """A condition to prepare and resolve through the contract, in a block at `timestamp`."""

    question_id: bytes
    numerators: tuple[int, ...]
    timestamp: int

    @property
    def condition_id(self) -> str:
        """The id the local chain will give it (its oracle is the chain's first account), as 64 hex."""
        return derived_condition_id(default_oracle(), self.question_id, len(self.numerators)).hex()


def write_resolutions(path: str | Path, planned: Iterable[PlannedResolution]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("question_id", "payout_numerators", "timestamp"))
        for item in planned:
            writer.writerow((item.question_id.hex(), json.dumps(list(item.numerators)), item.timestamp))


def load_resolutions(path: str | Path) -> list[PlannedResolution]:
    with open(path, newline="") as handle:
        return [
            PlannedResolution(bytes.fromhex(r["question_id"]), tuple(json.loads(r["payout_numerators"])), int(r["timestamp"]))
            for r in csv.DictReader(handle)
        ]
