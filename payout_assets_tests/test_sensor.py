"""The daily sensor: what it requests, what it skips, and the run it launches end to end."""

from datetime import timedelta

import dagster as dg
import polars as pl

from payout_assets.load import TABLE
from payout_assets.partitions import SHARDS
from payout_assets.sensor import RANGE_TAGS, RECHECK_HOURS, new_and_unresolved_payouts
from payout_assets_tests.conftest import BACKFILL, Truth, backfill, query, random_ids
from subgraph_replica import ConditionRow, ReplicaServer


def tick(resources: dict, cursor: str | None = None) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(cursor=cursor, resources={"files": resources["files"], "clickhouse": resources["clickhouse"]})
    return new_and_unresolved_payouts(context)


def run_requests(result) -> list[dg.RunRequest]:
    return [] if isinstance(result, dg.SkipReason) else list(result.run_requests)


def append_ids(resources: dict, ids: list[str]) -> None:
    with open(resources["files"].input_ids_path, "a") as handle:
        handle.write("\n".join(ids) + "\n")


def age_statuses(resources: dict, hours: float) -> None:
    """As if the last fetch of every shard happened `hours` ago."""
    files = resources["files"]
    for shard in SHARDS:
        frame = files.read("statuses", shard)
        files.write("statuses", shard, frame.with_columns(pl.col("fetched_at") - timedelta(hours=hours)))


def launch(resources: dict, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    return dg.materialize(BACKFILL, resources=resources, tags=request.tags, run_config=request.run_config)


def ids_in_shards(shards: str, count_each: int, seed: int) -> list[str]:
    picked = [cid for cid in random_ids(4000, seed) if cid[0] in shards]
    return [cid for shard in shards for cid in [c for c in picked if c[0] == shard][:count_each]]


def test_nothing_new_requests_nothing(resources: dict):
    assert backfill(resources).success
    assert run_requests(tick(resources)) == []


def test_new_ids_in_three_shards_request_one_run_over_their_range(resources: dict, replica: ReplicaServer):
    assert backfill(resources).success
    new_ids = ids_in_shards("29c", 3, seed=99)
    append_ids(resources, new_ids)

    [request] = run_requests(tick(resources))
    assert (request.tags[RANGE_TAGS[0]], request.tags[RANGE_TAGS[1]]) == ("2", "c")

    replica.reset_stats()
    assert launch(resources, request).success
    assert set(replica.requested_ids()) == {f"0x{cid}" for cid in new_ids}


def test_unsettled_ids_are_rechecked_only_after_the_interval(resources: dict, truth: Truth):
    assert backfill(resources).success
    age_statuses(resources, RECHECK_HOURS - 1)
    assert run_requests(tick(resources)) == []
    age_statuses(resources, 2)
    [request] = run_requests(tick(resources))
    assert (request.tags[RANGE_TAGS[0]], request.tags[RANGE_TAGS[1]]) == (SHARDS[0], SHARDS[-1])


def test_a_repeated_tick_with_the_same_cursor_requests_no_second_run(resources: dict):
    assert backfill(resources).success
    append_ids(resources, ids_in_shards("5", 2, seed=5))
    first = tick(resources)
    assert len(run_requests(first)) == 1
    assert run_requests(tick(resources, cursor=first.cursor)) == []


def daily_cycle(resources: dict, replica: ReplicaServer, truth: Truth, unrelated_changes: int = 0) -> set[str]:
    """Backfill; a day passes (some markets resolve, new ids arrive); tick and run.

    Returns the ids the run asked for by id; asserts the table gained exactly the new payouts.
    """
    assert backfill(resources).success
    unresolved = [cid for cid in truth.ids if truth.status(cid) == "unresolved"]
    resolves_today = unresolved[:7]
    replica.upsert(ConditionRow(f"0x{cid}", ("0", "1"), "1", "", 2_000_000_000) for cid in resolves_today)
    replica.upsert(ConditionRow(f"0x{cid}", (), "0", "", 2_000_000_000) for cid in random_ids(unrelated_changes, seed=8))
    new_ids = ids_in_shards("3a", 4, seed=123)
    new_resolved = new_ids[:3]
    replica.upsert(ConditionRow(f"0x{cid}", ("1", "0"), "1", "", 2_000_000_001) for cid in new_resolved)
    append_ids(resources, new_ids)
    age_statuses(resources, RECHECK_HOURS + 1)
    before = {row[0] for row in query(resources, f"SELECT condition_id FROM {TABLE} FINAL")}

    [request] = run_requests(tick(resources))
    replica.reset_stats()
    assert launch(resources, request).success

    after = {row[0] for row in query(resources, f"SELECT condition_id FROM {TABLE} FINAL")}
    assert after - before == set(resolves_today) | set(new_resolved)
    asked = replica.requested_ids()
    assert all(count == 1 for count in asked.values())
    assert not set(asked) & {f"0x{cid}" for cid in truth.resolved()}  # a resolved payout is never fetched twice
    return {cid.removeprefix("0x") for cid in asked}


def test_daily_cycle_rechecks_through_the_change_feed(resources: dict, replica: ReplicaServer, truth: Truth):
    asked = daily_cycle(resources, replica, truth)
    new_ids = set(ids_in_shards("3a", 4, seed=123))
    assert asked == new_ids  # re-checks cost one `_change_block` page, not a request per 1,000 ids
    assert replica.stats()["accepted"] == 1 + 1 + 2  # the pre-flight probe (the fetch reuses it), one feed page, shards 3 and a


def test_daily_cycle_falls_back_to_a_plain_recheck_when_the_feed_is_longer(resources: dict, replica: ReplicaServer, truth: Truth):
    asked = daily_cycle(resources, replica, truth, unrelated_changes=16_000)
    due = {cid for cid in truth.ids if truth.status(cid) in ("unresolved", "not_found")}
    assert asked == due | set(ids_in_shards("3a", 4, seed=123))
