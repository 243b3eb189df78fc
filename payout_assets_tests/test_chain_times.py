"""Resolution times from `ConditionResolution` events: block ranges, the cursor, failures."""

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from eth_utils import keccak

from chain_replica import ChainServer, seeds_from_rows
from payout_assets.chain_times import read_cursor, read_times, stamp
from payout_assets.partitions import SHARDS
from payout_assets.resources.chain import ChainResource
from payout_assets.settings import POLYMARKET_CTF
from payout_assets.core.statuses import STATUS_SCHEMA
from payout_assets_tests.support import backfill, check_results, make_resources, make_truth, query
from subgraph_replica import ConditionRow, ReplicaServer

RANGE = 5  # blocks per eth_getLogs, on both sides


def resolve(chain: ChainServer, label: str, numerators: list[int], timestamp: int, gap: int = 7) -> tuple[str, ConditionRow]:
    """Resolve a condition through the contract at `timestamp`, then mine `gap` empty blocks;
    the subgraph row that indexes it (the pnl-subgraph has no resolution time)."""
    condition_id = chain.resolve(keccak(label.encode()), numerators, timestamp=timestamp)
    chain.mine(gap)
    return condition_id, ConditionRow(f"0x{condition_id}", tuple(map(str, numerators)), str(sum(numerators)), "", 30_000_000)


def chain_resource(chain: ChainServer) -> ChainResource:
    return ChainResource(rpc_url=chain.url, rate_limit=1000, backoff_seconds=0.01, max_attempts=2,
                         log_block_range=RANGE, log_start_block=0)


def statuses(resources: dict) -> pl.DataFrame:
    return pl.concat([resources["files"].read("statuses", shard) for shard in SHARDS])


def test_times_come_from_events_across_ranges_and_two_daily_runs(tmp_path: Path) -> None:
    truth = make_truth(60, seed=31)
    with ChainServer(seeds_from_rows(truth.rows.values()), max_log_blocks=RANGE) as chain:
        first = [resolve(chain, f"q{i}", numerators, 1_700_000_000 + 1000 * i)
                 for i, numerators in enumerate(([1, 0], [0, 1], [1, 1]))]
        with ReplicaServer([*truth.rows.values(), *(row for _, row in first)]) as replica:
            resources = make_resources(tmp_path, replica.url, [*truth.ids, *(cid for cid, _ in first)])
            resources["chain"] = chain_resource(chain)
            head = chain.head()
            result = backfill(resources)
            assert result.success
            calls = chain.stats()["calls"]
            assert calls["eth_getLogs"] == -(-(head + 1) // RANGE)  # blocks 0..head, five at a time
            assert read_cursor(resources["files"], POLYMARKET_CTF) == head + 1

            by_id = {row["condition_id"]: row for row in statuses(resources).iter_rows(named=True)}
            for i, (cid, _) in enumerate(first):
                assert by_id[cid]["resolved_at"] == datetime.fromtimestamp(1_700_000_000 + 1000 * i, timezone.utc)
                assert by_id[cid]["resolved_at_source"] == "chain"
            others = [row for cid, row in by_id.items() if row["status"] == "resolved" and cid not in dict(first)]
            assert others and all(row["resolved_at_source"] == "fetch_time" for row in others)
            table = dict(query(resources, "SELECT condition_id, resolved_at_source FROM default.resolutions_external_ingest FINAL"))
            assert {table[cid] for cid, _ in first} == {"chain"}
            materialization = result.asset_materializations_for_node("goldsky_payouts")[0]
            assert materialization.metadata["resolved_at_from_chain"].value == 3
            dates = check_results(result)["resolved_dates"]
            assert dates.passed and dates.metadata["from_chain"].value == 3

            # The next day: one more resolution; only the blocks after the cursor are read.
            chain.reset_stats()
            later_id, later_row = resolve(chain, "q-later", [0, 1], 1_800_000_000)
            replica.upsert([later_row])
            Path(resources["files"].input_ids_path).write_text("\n".join([*truth.ids, *(c for c, _ in first), later_id]) + "\n")
            new_head = chain.head()
            assert backfill(resources).success
            assert chain.stats()["calls"]["eth_getLogs"] == -(-(new_head - head) // RANGE)
            assert read_cursor(resources["files"], POLYMARKET_CTF) == new_head + 1
            later = statuses(resources).filter(pl.col("condition_id") == later_id).row(0, named=True)
            assert (later["resolved_at"], later["resolved_at_source"]) == (datetime.fromtimestamp(1_800_000_000, timezone.utc), "chain")
            times = pl.concat([read_times(resources["files"], shard) for shard in SHARDS])
            assert set(times["condition_id"]) == {*(c for c, _ in first), later_id}


def test_an_endpoint_refusing_the_range_leaves_fetch_times_and_the_cursor(tmp_path: Path) -> None:
    truth = make_truth(40, seed=32)
    with ChainServer(seeds_from_rows(truth.rows.values()), max_log_blocks=RANGE - 1) as chain:
        cid, row = resolve(chain, "refused", [1, 0], 1_700_000_000)
        with ReplicaServer([*truth.rows.values(), row]) as replica:
            resources = make_resources(tmp_path, replica.url, [*truth.ids, cid])
            resources["chain"] = chain_resource(chain)
            result = backfill(resources)
    assert result.success
    assert read_cursor(resources["files"], POLYMARKET_CTF) is None
    stamped = statuses(resources).filter(pl.col("condition_id") == cid).row(0, named=True)
    assert stamped["status"] == "resolved" and stamped["resolved_at_source"] == "fetch_time"


def test_only_this_runs_rows_with_a_fetch_time_take_the_chain_time() -> None:
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    earlier, event = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2025, 1, 1, tzinfo=timezone.utc)
    rows = pl.DataFrame(
        {
            "condition_id": ["a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64],
            "status": ["resolved", "resolved", "resolved", "unresolved", "resolved"],
            "resolved_at": [now, earlier, event, None, now],
            "resolved_at_source": ["fetch_time", "fetch_time", "subgraph", None, "fetch_time"],
            "fetched_at": [now, earlier, now, now, now],
        }
    ).cast({k: v for k, v in STATUS_SCHEMA.items() if k in ("status", "resolved_at", "fetched_at")})
    times = pl.DataFrame({"condition_id": ["a" * 64, "b" * 64, "c" * 64, "d" * 64], "block_number": [1, 2, 3, 4],
                          "resolved_at": [event] * 4}).cast({"block_number": pl.UInt64, "resolved_at": pl.Datetime("us", "UTC")})
    stamped, count = stamp(rows, times, since=now)
    assert count == 1
    assert stamped["resolved_at_source"].to_list() == ["chain", "fetch_time", "subgraph", None, "fetch_time"]
    assert stamped["resolved_at"].to_list() == [event, earlier, event, None, now]
