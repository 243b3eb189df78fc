"""Issue 5, item 8: two launches at once never meet in the embedded chDB directory.

chDB lets one process at a time open a directory, so two runs launched together must queue,
not fail on "directory in use" (or, by luck of timing, not fail at all while both hold it).
The project's dagster.yaml relies on pools for that: `granularity: run`, `default_limit: 1`,
and the assets that call Goldsky or open ClickHouse carry the pools `goldsky` / `clickhouse`.

Each test starts the webserver and daemon (see test_ui_path) on a fresh DAGSTER_HOME, launches
two runs over disjoint shard halves through the UI's GraphQL mutations, and asserts that both
succeed, that they did not overlap in time, and that the table equals the truth (it only does
if both loaded their half).

1. Both runs queued before the daemon's first pass (pools alone let these through together on
   a fresh instance; `concurrency: runs: max_concurrent_runs: 1` in dagster.yaml holds them).
2. Two backfills launched back to back with the daemon running: they queue and both complete.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from payout_assets.partitions import RANGE_TAGS, SHARDS
from payout_assets_tests.support import Truth, make_truth
from payout_assets_tests.support.dagster_ui import BACKFILL_KEYS, SUCCEEDED, DagsterUI, assert_table_matches_truth
from subgraph_replica import write_fixture
from subgraph_replica.process import replica_process

pytestmark = pytest.mark.slow  # process-level: `make test-fast` skips it

HALVES = (SHARDS[:8], SHARDS[8:])

@pytest.fixture
def concurrency_truth() -> Truth:
    return make_truth(2000, seed=58)


@pytest.fixture
def replica_url(tmp_path: Path, concurrency_truth: Truth) -> Iterator[str]:
    write_fixture(tmp_path / "truth.csv", concurrency_truth.rows.values())
    # Latency keeps each run fetching for seconds: two runs let through together surely overlap.
    with replica_process(tmp_path / "truth.csv", "--latency", "0.3") as url:
        yield url


def assert_queued_one_after_the_other(ui: DagsterUI, runs: list[dict], truth: Truth) -> None:
    assert len(runs) == 2
    failures = {run["runId"]: ui.run_errors(run["runId"]) for run in runs if run["status"] != "SUCCESS"}
    assert not failures, f"a run failed (chDB 'directory in use'?): {failures}"
    ranges = sorted(
        tuple(tags[tag] for tag in RANGE_TAGS)
        for tags in ({tag["key"]: tag["value"] for tag in run["tags"]} for run in runs)
    )
    assert ranges == [(half[0], half[-1]) for half in HALVES]
    assert_table_matches_truth(ui, truth)  # both halves loaded, nothing twice
    earlier, later = sorted(runs, key=lambda run: run["startTime"])
    assert earlier["endTime"] <= later["startTime"], (
        f"the runs overlapped: {earlier['runId']} ran {earlier['startTime']:.2f}..{earlier['endTime']:.2f}, "
        f"{later['runId']} started at {later['startTime']:.2f}"
    )


def test_two_runs_queued_before_the_daemon_starts_run_one_after_the_other(tmp_path: Path, replica_url: str, concurrency_truth: Truth):
    ui = DagsterUI(tmp_path, concurrency_truth, replica_url)
    try:
        ui.start(daemon=False)
        # Two operators press "Materialize" on a shard range (launched as a single run) at once:
        # both runs wait in the queue when the daemon takes its first look.
        run_ids = [ui.launch_run(BACKFILL_KEYS, half[0], half[-1]) for half in HALVES]
        assert [run["status"] for run in ui.runs(run_ids)] == ["QUEUED", "QUEUED"]
        ui.start_daemon()
        assert_queued_one_after_the_other(ui, ui.wait_for_runs(run_ids), concurrency_truth)
    finally:
        ui.stop()


def test_two_backfills_launched_at_once_queue_and_both_complete(tmp_path: Path, replica_url: str, concurrency_truth: Truth):
    ui = DagsterUI(tmp_path, concurrency_truth, replica_url)
    try:
        ui.start()
        backfill_ids = [ui.launch_backfill(list(half)) for half in HALVES]
        backfills = ui.wait_for_backfills(backfill_ids)
        assert all(backfills[b]["status"] in SUCCEEDED for b in backfill_ids)
        assert [len(backfills[b]["runs"]) for b in backfill_ids] == [1, 1]  # BackfillPolicy.single_run()
        runs = ui.runs([run["runId"] for b in backfill_ids for run in backfills[b]["runs"]])
        assert_queued_one_after_the_other(ui, runs, concurrency_truth)
    finally:
        ui.stop()
