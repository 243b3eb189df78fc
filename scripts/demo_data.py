"""Demo data: a replica fixture for the demo's input ids and the users' existing table.

The 26,658 input ids are real Polymarket condition ids, but their payouts are not known
here: the fixture assigns each a deterministic truth (resolved, unresolved or absent).
`market_resolutions_final` is seeded with the 1,179 real outcomes in the sample CSV. The
demo also asks for some of those ids (through PAYOUT_INPUT_SQL), so that the view's
precedence shows, and the replica disagrees on a few of them, so that
`agreement_with_existing` has something to report.
"""

import csv
from datetime import datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from payout_assets.core.condition_ids import read_id_file
from subgraph_replica import ConditionRow, synthesize_truth, write_fixture

DEMO_SEED = 2026
OVERLAP = 60  # ids of the users' table the demo asks for too
DISAGREEMENTS = 3  # of them, the replica holds the opposite payout
OVERLAP_SQL = f"SELECT condition_id_norm FROM default.market_resolutions_final ORDER BY condition_id_norm LIMIT {OVERLAP}"

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
