"""The daily sensor as Dagster evaluates it: the code location's own sensor, its resources bound
from the environment, `evaluate_tick`, and the run it requests executed as the sensor's job."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import time_machine

from dagster._core.definitions.sensor_definition import SensorExecutionData

from payout_assets.fetch_plan import request_count
from payout_assets.load import TABLE
from payout_assets.partitions import RANGE_TAGS, SHARDS
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.sensor import SENSOR_NAME
from payout_assets.view import VIEW
from payout_assets_tests.support import (
    BACKFILL_KEYS,
    Truth,
    build_view,
    code_location,
    location_env,
    make_resources,
    make_truth,
    query,
    random_ids,
)
from subgraph_replica import ConditionRow, ReplicaServer

pytestmark = pytest.mark.slow  # every test runs whole sensor cycles: `make test-fast` skips them

DAY = timedelta(days=1)
START = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc)
LATE_BLOCK = 200_000_000  # above every block the synthesized truth holds


class Location:
    """The code location on a test's files, replica and chDB, with a Dagster instance for its runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, resources: dict, instance: dg.DagsterInstance) -> None:
        self.resources = resources
        self.defs = code_location(monkeypatch, resources)
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> SensorExecutionData:
        """One evaluation as the daemon's code server makes it: the sensor from the code location, its
        resources the location's own (bound from the environment); the cursor carries over."""
        sensor = self.defs.resolve_sensor_def(SENSOR_NAME)
        top_level = self.defs.get_repository_def().get_top_level_resources()
        resources = {key: top_level[key] for key in sensor.required_resource_keys}
        with dg.build_sensor_context(
            instance=self.instance, definitions=self.defs, resources=resources, cursor=self.cursor
        ) as context:
            data = sensor.evaluate_tick(context)
        self.cursor = data.cursor or self.cursor
        return data

    def launch(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """The requested run, executed as the sensor's own job with the request's tags and config."""
        job = self.defs.resolve_job_def(self.defs.resolve_sensor_def(SENSOR_NAME).job_name)
        return job.execute_in_process(
            instance=self.instance, tags=request.tags, run_config=request.run_config, raise_on_error=False
        )

    def tick_and_run(self) -> dg.ExecuteInProcessResult:
        [request] = self.tick().run_requests
        result = self.launch(request)
        assert result.success
        return result

    def append_ids(self, ids: list[str]) -> None:
        with open(self.resources["files"].input_ids_path, "a") as handle:
            handle.write("\n".join(ids) + "\n")

    def statuses(self) -> pl.DataFrame:
        files = self.resources["files"]
        return pl.concat([files.read("statuses", shard) for shard in SHARDS])

    def table(self) -> dict[str, tuple[list[int], int]]:
        rows = query(self.resources, f"SELECT condition_id, payout_numerators, payout_denominator FROM {TABLE} FINAL")
        return {cid: (list(nums), den) for cid, nums, den in rows}


@pytest.fixture
def location(monkeypatch, resources: dict) -> Location:
    with dg.instance_for_test() as instance:
        yield Location(monkeypatch, resources, instance)


def ids_in_shards(shards: str, count_each: int, seed: int) -> list[str]:
    picked = [cid for cid in random_ids(4000, seed) if cid[0] in shards]
    return [cid for shard in shards for cid in [c for c in picked if c[0] == shard][:count_each]]


def resolved_row(cid: str, block: int, numerators: tuple[str, str] = ("0", "1")) -> ConditionRow:
    return ConditionRow(f"0x{cid}", numerators, "1", "", block)


def test_the_sensor_targets_the_three_partitioned_assets(location: Location):
    sensor = location.defs.resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    [target] = sensor.targets
    keys = {key.to_user_string() for asset in target.assets_defs for key in asset.keys}
    assert keys == set(BACKFILL_KEYS)


def test_first_tick_requests_one_run_over_every_shard_and_the_run_loads_the_truth(location: Location, truth: Truth):
    data = location.tick()
    [request] = data.run_requests
    assert (request.tags[RANGE_TAGS[0]], request.tags[RANGE_TAGS[1]]) == (SHARDS[0], SHARDS[-1])
    assert location.launch(request).success
    assert location.table() == {cid: value for cid, value in truth.resolved().items()}
    again = location.tick()
    assert again.run_requests == [] and "checked within the re-check interval" in again.skip_message


def test_new_ids_in_three_shards_request_one_run_over_their_range(location: Location, replica: ReplicaServer):
    location.tick_and_run()
    new_ids = ids_in_shards("29c", 3, seed=99)
    location.append_ids(new_ids)
    [request] = location.tick().run_requests
    assert (request.tags[RANGE_TAGS[0]], request.tags[RANGE_TAGS[1]]) == ("2", "c")
    replica.reset_stats()
    assert location.launch(request).success
    assert set(replica.requested_ids()) == {f"0x{cid}" for cid in new_ids}


def test_a_repeated_tick_on_the_same_day_requests_no_second_run(location: Location):
    location.tick_and_run()
    location.append_ids(ids_in_shards("5", 2, seed=5))
    assert len(location.tick().run_requests) == 1
    second = location.tick()
    assert second.run_requests == [] and "already requested today" in second.skip_message


def test_failed_ids_are_retried_on_the_next_tick(location: Location, replica: ReplicaServer, truth: Truth, monkeypatch):
    monkeypatch.setattr("payout_assets.fetch_plan.MAX_IDS_PER_REQUEST", 10)  # requests of shard 7's ids alone
    replica.configure(faults={"rate": 1.0, "kinds": ["503"], "id_prefixes": ["0x7"]})
    location.tick_and_run()
    failed = location.statuses().filter(pl.col("status") == "failed")["condition_id"].to_list()
    assert failed and all(cid.startswith("7") for cid in failed)
    replica.configure(faults=None)
    replica.reset_stats()
    [request] = location.tick().run_requests  # minutes later, well within the re-check interval
    assert (request.tags[RANGE_TAGS[0]], request.tags[RANGE_TAGS[1]]) == ("7", "7")
    assert location.launch(request).success
    assert set(replica.requested_ids()) == {f"0x{cid}" for cid in failed}
    assert location.statuses().filter(pl.col("status") == "failed").height == 0


def test_an_unsettled_id_is_rechecked_on_every_daily_tick_with_the_defaults(location: Location, truth: Truth):
    unsettled = {cid for cid in truth.ids if truth.status(cid) != "resolved"}
    with time_machine.travel(START, tick=True) as clock:
        location.tick_and_run()
        for day in range(1, 6):
            # The daemon ticks one interval after the last tick, give or take its loop.
            tick_at = START + day * DAY + timedelta(seconds=30 * day)
            clock.move_to(tick_at)
            location.tick_and_run()
            statuses = location.statuses().filter(pl.col("condition_id").is_in(list(unsettled)))
            assert statuses.height == len(unsettled)
            assert statuses["fetched_at"].min() >= tick_at, f"day {day}: some unsettled ids were not re-checked"


def test_statuses_from_another_endpoint_are_asked_again_by_id(location: Location, monkeypatch, truth: Truth, tmp_path: Path):
    location.tick_and_run()
    not_found = [cid for cid in truth.ids if truth.status(cid) == "not_found"]
    # The main subgraph has conditions the pnl-subgraph lacks.
    richer = [*truth.rows.values(), *(resolved_row(cid, LATE_BLOCK) for cid in not_found[:5])]
    with ReplicaServer(richer) as other:
        resources = {**location.resources, "goldsky": GoldskyResource(url=other.url, rate_limit=1000, backoff_seconds=0.01)}
        switched = Location(monkeypatch, resources, location.instance)
        [request] = switched.tick().run_requests  # within the re-check interval, but another endpoint answered
        assert switched.launch(request).success
        unsettled = {f"0x{cid}" for cid in truth.ids if truth.status(cid) != "resolved"}
        assert set(other.requested_ids()) == unsettled  # by id, not confirmed through the change feed
    assert set(not_found[:5]) <= set(location.table())


def test_the_run_fetches_what_the_tick_saw_however_long_it_queued(location: Location, replica: ReplicaServer, truth: Truth):
    location.tick_and_run()
    location.append_ids(ids_in_shards("4", 2, seed=41))
    [request] = location.tick().run_requests
    replica.reset_stats()
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(hours=30)):  # dequeued a day late
        assert location.launch(request).success
    unsettled_in_4 = {f"0x{cid}" for cid in truth.ids if cid[0] == "4" and truth.status(cid) != "resolved"}
    assert not set(replica.requested_ids()) & unsettled_in_4


def test_dagster_sensor_preview_prints_the_run_request(resources: dict, tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, **location_env(resources), "DAGSTER_HOME": str(home)}
    dagster = Path(sys.executable).with_name("dagster")
    preview = subprocess.run(
        [str(dagster), "sensor", "preview", SENSOR_NAME, "-m", "payout_assets"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert "Sensor returning run requests for 1 run(s)" in preview.stdout, preview.stdout
    assert "checked_before:" in preview.stdout
    assert "ids to fetch per shard: 0: " in preview.stdout + preview.stderr


def test_soak_over_simulated_days(monkeypatch, tmp_path: Path, capsys):
    """Each day new ids arrive and some open markets resolve, one of them while the change
    feed's pages are read; after every day the table and the view hold exactly the truth."""
    # Enough open markets (about 2,800) that asking them by id (3 requests) costs more than the
    # feed of a day's changes (2 pages): batches run across shards, so 750 would take one request.
    truth = make_truth(10_000, seed=31)
    unresolved = [cid for cid in truth.ids if truth.status(cid) == "unresolved"]
    newcomers = random_ids(600, seed=32)
    block = LATE_BLOCK
    with ReplicaServer(truth.rows.values()) as replica, dg.instance_for_test() as instance, \
            time_machine.travel(START, tick=True) as clock:
        location = Location(monkeypatch, make_resources(tmp_path, replica.url, truth.ids), instance)
        location.tick_and_run()
        assert build_view(location.resources).success
        expected = truth.resolved()
        mid_feed: str | None = None
        report = []
        for day in range(1, 7):
            clock.move_to(START + day * DAY + timedelta(minutes=day))
            block += 10_000
            # The day's upstream: 1,500 unrelated changes (the feed takes two pages),
            # some open markets resolve, and new ids arrive, some of them long resolved.
            replica.upsert(ConditionRow(f"0x{cid}", (), "0", "", block) for cid in random_ids(1500, seed=100 + day))
            resolving = unresolved[day * 10 : day * 10 + 10]
            replica.upsert(resolved_row(cid, block + 1) for cid in resolving)
            arriving = newcomers[(day - 1) * 100 : day * 100]
            replica.upsert(resolved_row(cid, block + 2, ("1", "0")) for cid in arriving[:40])
            location.append_ids(arriving)
            # While the feed is read (after the probe and its first page), a market whose id lies
            # below the feed's cursor resolves, and the chain moves on: the feed must not lose it.
            late = next(cid for cid in unresolved[200:] if cid < "08" and cid not in expected)
            moved_on = ConditionRow(f"0x{random_ids(1, seed=200 + day)[0]}", (), "0", "", block + 6)
            replica.upsert_after(2, [resolved_row(late, block + 5), moved_on])

            already_resolved = {f"0x{cid}" for cid in expected}
            replica.reset_stats()
            location.tick_and_run()
            asked = replica.requested_ids()
            assert not set(asked) & already_resolved, f"day {day}: a resolved id was fetched again"
            expected |= {cid: ([0, 1], 1) for cid in resolving} | {cid: ([1, 0], 1) for cid in arriving[:40]}
            if mid_feed is not None:
                expected[mid_feed] = ([0, 1], 1)  # yesterday's late resolution, seen by today's feed
            assert late not in location.table(), f"day {day}: the feed saw a change made after its block"
            assert location.table() == expected, f"day {day}"
            view = query(location.resources, f"SELECT condition_id, payout_numerators, payout_denominator FROM {VIEW}")
            assert {cid: (list(nums), den) for cid, nums, den in view} == expected, f"day {day}: the view"
            report.append((day, replica.stats()["accepted"], sum(asked.values())))
            unresolved.remove(late)
            mid_feed = late
    with capsys.disabled():
        print("\nsoak: day, requests, ids asked by id: " + "; ".join(f"{d}: {r}, {i}" for d, r, i in report))


def unsettled_asked(truth: Truth) -> set[str]:
    return {f"0x{cid}" for cid in truth.ids if truth.status(cid) != "resolved"}


def next_day_run(location: Location, replica: ReplicaServer) -> dict[str, int]:
    """Backfill today, tick and run tomorrow; the ids that run asked for by id."""
    with time_machine.travel(START, tick=True) as clock:
        location.tick_and_run()
        clock.move_to(START + DAY)
        replica.reset_stats()
        location.tick_and_run()
    return replica.requested_ids()


@pytest.fixture
def open_markets(monkeypatch, tmp_path: Path) -> Iterator[tuple[Location, ReplicaServer, Truth]]:
    """A location whose open markets (about 2,300 of 8,000 ids) take 3 requests to ask by id, so
    the feed is weighed against them: batches run across shards, and 750 would take one request,
    which no feed can beat."""
    truth = make_truth(8000, seed=33)
    with ReplicaServer(truth.rows.values()) as replica, dg.instance_for_test() as instance:
        yield Location(monkeypatch, make_resources(tmp_path, replica.url, truth.ids), instance), replica, truth


def asked_by_id_after_trying_the_feed(location: Location, replica: ReplicaServer, truth: Truth) -> set[str]:
    """The ids the next day's run asked by id, once it had tried the feed: more requests than the
    probe and the plain re-check."""
    asked = set(next_day_run(location, replica))
    assert replica.stats()["accepted"] > 1 + request_count(len(unsettled_asked(truth)))
    return asked


def test_a_feed_longer_than_a_plain_recheck_falls_back_to_asking_by_id(open_markets):
    location, replica, truth = open_markets
    replica.upsert(ConditionRow(f"0x{cid}", (), "0", "", LATE_BLOCK) for cid in random_ids(16_000, seed=8))
    assert asked_by_id_after_trying_the_feed(location, replica, truth) == unsettled_asked(truth)


def test_a_block_the_endpoint_cannot_serve_falls_back_to_asking_by_id(open_markets):
    location, replica, truth = open_markets
    replica.configure(history_from_block=10**12)  # every `block:` argument is refused, as for pruned history
    assert asked_by_id_after_trying_the_feed(location, replica, truth) == unsettled_asked(truth)


def test_the_feed_rechecks_without_asking_by_id(open_markets):
    location, replica, _ = open_markets
    assert next_day_run(location, replica) == {}
    assert replica.stats()["accepted"] == 1 + 1  # the pre-flight probe (the fetch reuses it) and one feed page
