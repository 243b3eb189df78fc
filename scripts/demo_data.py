"""Demo data: a replica fixture for the demo's input ids and the users' existing table.

The 26,658 input ids are real Polymarket condition ids, but their payouts are not known
here: the fixture assigns each a deterministic truth (resolved, unresolved or absent).
`market_resolutions_final` is seeded with the 1,179 real outcomes in the sample CSV. The
demo also asks for some of those ids (through PAYOUT_INPUT_SQL), so that the view's
precedence shows, and the replica disagrees on a few of them, so that
`agreement_with_existing` has something to report.
"""

import csv
import random
import shutil
from datetime import datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client
from eth_utils import keccak

from chain_replica import PlannedResolution, SeededCondition, seeds_from_rows, write_resolutions, write_seeds
from payout_assets.core.condition_ids import read_id_file
from subgraph_replica import ConditionRow, load_fixture, synthesize_truth, write_fixture

DEMO_SEED = 2026
OVERLAP = 60  # ids of the users' table the demo asks for too
DISAGREEMENTS = 3  # of them, the replica holds the opposite payout
OVERLAP_SQL = f"SELECT condition_id_norm FROM default.market_resolutions_final ORDER BY condition_id_norm LIMIT {OVERLAP}"

# The local chain: every condition the fixture holds, in genesis storage; half the ids the
# subgraph lacks, resolved there; and conditions resolved through the contract's transactions,
# which the input gains on the demo's second day (they have events, so resolution times).
CHAIN_BORN = 150
CHAIN_ONLY = 30  # of them, the subgraph lacks: the chain settles them
CHAIN_DISAGREEMENTS = 5  # of the others, the subgraph holds the opposite payout
FIRST_RESOLUTION = 1_704_067_200  # 2024-01-01

# The users' table exactly as it is in their database (DESIGN.md).
EXISTING_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS default.market_resolutions_final (
  condition_id_norm FixedString(64), winning_outcome LowCardinality(String), winning_index UInt16,
  payout_numerators Array(UInt8), payout_denominator UInt8, outcome_count UInt8,
  resolved_at Nullable(DateTime), updated_at DateTime, source LowCardinality(String), version UInt8
) ENGINE = ReplacingMergeTree ORDER BY condition_id_norm
"""
EXISTING_COLUMNS = [
    "condition_id_norm", "winning_outcome", "winning_index", "payout_numerators", "payout_denominator",
    "outcome_count", "resolved_at", "updated_at", "source", "version",
]


def write_demo_fixture(input_ids: Path, fixture: Path, existing: list[list]) -> int:
    """Assign a truth to every valid input id, and to the overlap with the users' table its real
    payout (reversed for the first few); returns how many entities the replica holds."""
    rows = synthesize_truth(read_id_file(input_ids).ids, seed=DEMO_SEED)
    for index, row in enumerate(sorted(existing)[:OVERLAP]):
        numerators = row[3][::-1] if index < DISAGREEMENTS else row[3]
        rows.append(ConditionRow(f"0x{row[0]}", tuple(map(str, numerators)), str(sum(numerators)), "", 1))
    write_fixture(fixture, rows)
    return len(rows)


def real_outcome_rows(sample_csv: Path) -> list[list]:
    """`market_resolutions_final` rows for the sample's resolved markets (YES → [1,0])."""
    rows = []
    with sample_csv.open(newline="") as handle:
        for record in csv.DictReader(handle):
            if record["resolved_outcome"] not in ("YES", "NO"):
                continue
            numerators = [int(record["payout_yes"]), int(record["payout_no"])]
            resolved_at = (
                datetime.fromisoformat(record["resolved_at"].replace("Z", "+00:00")).replace(tzinfo=None)
                if record["resolved_at"]
                else None
            )
            rows.append([
                record["condition_id"].removeprefix("0x"), record["resolved_outcome"], numerators.index(1),
                numerators, sum(numerators), 2, resolved_at, resolved_at or datetime(2025, 11, 1),
                "polymarket-api", 1,
            ])
    return rows


def seed_existing_table(client: Client, rows: list[list]) -> None:
    client.command(EXISTING_TABLE_DDL)
    client.command("TRUNCATE TABLE default.market_resolutions_final")
    client.insert("default.market_resolutions_final", rows, column_names=EXISTING_COLUMNS)


def chain_plan(seed: int = DEMO_SEED) -> list[PlannedResolution]:
    """Binary conditions resolved through the contract, one to three days apart from 2024 on."""
    rng, when, planned = random.Random(seed), FIRST_RESOLUTION, []
    for index in range(CHAIN_BORN):
        when += rng.randint(86_400, 3 * 86_400)
        planned.append(PlannedResolution(keccak(f"demo question {index}".encode()), rng.choice([(1, 0), (0, 1)]), when))
    return planned


def write_demo_chain(input_ids: Path, fixture: Path, seeds: Path, resolutions: Path, day_two_input: Path) -> dict[str, int]:
    """The local chain's seeds and resolutions, the subgraph's rows for the chain-born conditions
    (a few of them wrong), and the second day's input; returns what was made."""
    rows = load_fixture(fixture)
    seeds.parent.mkdir(parents=True, exist_ok=True)
    absent = sorted(set(read_id_file(input_ids).ids) - {row.id.removeprefix("0x") for row in rows})
    settled_by_chain = absent[::2]
    write_seeds(seeds, [
        *seeds_from_rows(rows),
        *(SeededCondition(bytes.fromhex(cid), 2, (1, 0) if i % 2 else (0, 1)) for i, cid in enumerate(settled_by_chain)),
    ])
    planned = chain_plan()
    write_resolutions(resolutions, planned)
    for index, item in enumerate(planned[CHAIN_ONLY:]):
        numerators = item.numerators[::-1] if index < CHAIN_DISAGREEMENTS else item.numerators
        rows.append(ConditionRow(f"0x{item.condition_id}", tuple(map(str, numerators)), str(sum(numerators)), "", 1))
    write_fixture(fixture, rows)
    shutil.copyfile(input_ids, day_two_input)
    with day_two_input.open("a") as handle:
        handle.writelines(f"{item.condition_id}\n" for item in planned)
    return {"chain_born": len(planned), "absent_resolved_on_chain": len(settled_by_chain)}
