"""Fixture rows for the replica: CSV load/save and deterministic truth synthesis.

A row holds the raw values a subgraph stores, as strings, so that a corrupt
fixture (non-numeric or huge numerators, duplicate ids) reaches the client
verbatim, exactly as a broken upstream would send it.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIELDS = ("id", "payout_numerators", "payout_denominator", "resolution_timestamp", "change_block")

# Resolution times are drawn from this range (2021-01-01 .. 2026-06-01 UTC).
_TS_MIN, _TS_MAX = 1_609_459_200, 1_780_272_000
# Unresolved rows changed (were prepared) in [_PREPARED_BLOCK_MIN, _RESOLVED_BLOCK_BASE),
# strictly before any resolved row changed.
_PREPARED_BLOCK_MIN, _RESOLVED_BLOCK_BASE = 10_000_000, 20_000_000


@dataclass(frozen=True, slots=True)
class ConditionRow:
    """One `Condition` entity as the subgraph stores it."""

    id: str
    payout_numerators: tuple[str, ...]
    payout_denominator: str
    resolution_timestamp: str  # unix seconds, or "" while unresolved
    change_block: int


def row_from_mapping(data: Mapping[str, Any]) -> ConditionRow:
    """Build a row from a CSV record or admin JSON; numerators may be a JSON text or a list."""
    numerators = data.get("payout_numerators") or []
    if isinstance(numerators, str):
        numerators = json.loads(numerators)
    timestamp = data.get("resolution_timestamp")
    return ConditionRow(
        id=str(data["id"]),
        payout_numerators=tuple(str(n) for n in numerators),
        payout_denominator=str(data.get("payout_denominator", "0")),
        resolution_timestamp="" if timestamp is None else str(timestamp),
        change_block=int(data.get("change_block") or 0),
    )


def load_fixture(path: str | Path) -> list[ConditionRow]:
    """Read a fixture CSV (header `FIELDS`)."""
    with open(path, newline="") as handle:
        return [row_from_mapping(record) for record in csv.DictReader(handle)]


def write_fixture(path: str | Path, rows: Iterable[ConditionRow]) -> None:
    """Write rows as a fixture CSV that `load_fixture` reads back unchanged."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow(
                (row.id, json.dumps(list(row.payout_numerators)), row.payout_denominator,
                 row.resolution_timestamp, row.change_block)
            )


def synthesize_truth(
    ids: Iterable[str],
    seed: int = 0,
    resolved_share: float = 0.73,
    unresolved_share: float = 0.25,
) -> list[ConditionRow]:
    """Deterministic upstream truth for 64-hex ids: resolved, unresolved or absent (the rest).

    Resolved payouts are [1,0] / [0,1] (~49.5% each) or [1,1] (~1%); the
    resolution block follows the resolution time, so it is above every
    unresolved row's block, which lets `_change_block` tests find resolutions.
    """
    rng = random.Random(seed)
    draw = rng.random  # int(draw() * span) instead of randint: 1M ids must take seconds
    unresolved_limit = resolved_share + unresolved_share
    out: list[ConditionRow] = []
    append = out.append
    for raw in ids:
        entity_id = "0x" + raw.lower().removeprefix("0x")
        kind = draw()
        if kind < resolved_share:
            outcome = draw()
            if outcome < 0.495:
                numerators, denominator = ("1", "0"), "1"
            elif outcome < 0.99:
                numerators, denominator = ("0", "1"), "1"
            else:
                numerators, denominator = ("1", "1"), "2"
            timestamp = _TS_MIN + int(draw() * (_TS_MAX - _TS_MIN))
            block = _RESOLVED_BLOCK_BASE + (timestamp - _TS_MIN) // 2
            append(ConditionRow(entity_id, numerators, denominator, str(timestamp), block))
        elif kind < unresolved_limit:
            block = _PREPARED_BLOCK_MIN + int(draw() * (_RESOLVED_BLOCK_BASE - _PREPARED_BLOCK_MIN))
            append(ConditionRow(entity_id, (), "0", "", block))
    return out
