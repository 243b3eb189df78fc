"""Issue 5, items 3-4: kill -9 while fetching or loading, and ClickHouse down while loading.

The crash tests run the backfill exactly as an operator does, `dagster asset materialize`
in a process of its own against a replica process, kill -9 its process group, relaunch
only what Dagster recorded as not materialized, and compare table and view with a clean
run's. They use the main-subgraph schema, whose resolution times come from the subgraph:
then every column but fetched_at/version is the same in any two runs.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from payout_assets.fetch import goldsky_payouts
from payout_assets.input_ids import missing_condition_ids
from payout_assets.load import TABLE
from payout_assets.partitions import SHARDS
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.view import VIEW
from payout_assets_tests.support import BACKFILL_KEYS, FULL_RANGE, Truth, backfill, build_view, load_only, make_resources, make_truth, query, statuses
from payout_assets_tests.support.processes import free_port, replica_admin
from subgraph_replica import ReplicaServer, write_fixture
from subgraph_replica.process import replica_process

pytestmark = pytest.mark.slow  # process-level: `make test-fast` skips it

PROJECT = Path(__file__).resolve().parent.parent
DAGSTER = str(Path(sys.executable).with_name("dagster"))
TABLE_SQL = (
    "SELECT condition_id, payout_numerators, payout_denominator, winning_index, resolved_at, source, "
    f"resolved_at_source, block_number FROM {TABLE} FINAL ORDER BY condition_id"
)
RUN_TIMEOUT = 120

# Loading a few thousand rows takes milliseconds, so no kill can be aimed at it by timing.
# This hook (on PYTHONPATH of the killed run only; no project file changes) holds the run
# right after clickhouse-connect's insert returned, before Dagster records the
# materialization: the worst moment, where a relaunch could load the same rows twice.
PAUSE_AFTER_INSERT_HOOK = """
import os, time

marker = os.environ.get("RELIABILITY_PAUSE_AFTER_INSERT")
if marker:
    from clickhouse_connect.driver import client as _client
    _insert = _client.Client.insert_arrow
    def insert_arrow(self, *args, **kwargs):
        result = _insert(self, *args, **kwargs)
        with open(marker, "w") as done:
            done.write("inserted")
        time.sleep(600)
        return result
    _client.Client.insert_arrow = insert_arrow
"""


@pytest.fixture(scope="module")
def crash_truth() -> Truth:
    return make_truth(1500, seed=31)


@pytest.fixture(scope="module")
def clean_run(crash_truth: Truth, tmp_path_factory) -> tuple[list, list]:
    """Table and view after one uninterrupted backfill."""
    workspace = tmp_path_factory.mktemp("clean")
    with ReplicaServer(crash_truth.rows.values(), schema="main") as replica:
        resources = make_resources(workspace, replica.url, crash_truth.ids)
        assert backfill(resources).success
    assert build_view(resources).success
    return query(resources, TABLE_SQL), query(resources, f"SELECT * FROM {VIEW} ORDER BY condition_id")


class Workspace:
    """DAGSTER_HOME, id file, shard Parquet and chDB directory of one operator's backfill."""

    def __init__(self, root: Path, truth: Truth, goldsky_url: str) -> None:
        self.root = root
        self.resources = make_resources(root, goldsky_url, truth.ids)
        self.home = root / "dagster_home"
        self.home.mkdir()
        shutil.copy(PROJECT / "dagster.yaml", self.home / "dagster.yaml")
        self.hook_dir = root / "hook"
        self.hook_dir.mkdir()
        (self.hook_dir / "sitecustomize.py").write_text(PAUSE_AFTER_INSERT_HOOK)
        self.env = {
            **os.environ,
            "GOLDSKY_URL": goldsky_url,
            "CLICKHOUSE_URL": self.resources["clickhouse"].url,
            "PAYOUT_INPUT_IDS": self.resources["files"].input_ids_path,
            "PAYOUT_SHARDS_DIR": self.resources["files"].shards_dir,
            "DAGSTER_HOME": str(self.home),
            "GOLDSKY_MAX_ATTEMPTS": "40",  # the replica's rate limit answers 429s by design
            "GOLDSKY_BACKOFF_SECONDS": "0.05",
        }
        self.processes: list[subprocess.Popen] = []

    def launch(self, keys: list[str], first: str, last: str, **env: str) -> subprocess.Popen:
        with open(self.root / f"run{len(self.processes) + 1}.log", "w") as log:
            command = [DAGSTER, "asset", "materialize", "-m", "payout_assets", "--select", ",".join(keys), "--partition-range", f"{first}...{last}"]
            process = subprocess.Popen(command, cwd=PROJECT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def log(self) -> str:
        return (self.root / f"run{len(self.processes)}.log").read_text()[-4000:]

    def stop_all(self) -> None:
        """After a failed assertion: no run of ours outlives the test."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def kill_when(self, process: subprocess.Popen, ready) -> None:
        """kill -9 the run's process group as soon as `ready()`; fail if the run ends first."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while not ready():
            assert process.poll() is None, f"the run ended (exit {process.returncode}) before the kill point:\n{self.log()}"
            assert time.monotonic() < deadline, "the kill point never came"
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL

    def unmaterialized(self) -> dict[str, set[str]]:
        """Shards of each backfill asset that Dagster has not recorded as materialized."""
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            return {key: set(SHARDS) - instance.get_materialized_partitions(dg.AssetKey(key)) for key in BACKFILL_KEYS}

    def relaunch_unmaterialized(self) -> dict[str, set[str]]:
        """One run for what is missing: the assets lacking shards, over the range covering them."""
        missing = self.unmaterialized()
        shards = sorted(set().union(*missing.values()), key=SHARDS.index)
        keys = [key for key in BACKFILL_KEYS if missing[key]]
        process = self.launch(keys, shards[0], shards[-1])
        assert process.wait(timeout=RUN_TIMEOUT) == 0, self.log()
        return missing

    def statuses_written(self) -> int:
        return sum(self.resources["files"].exists("statuses", shard) for shard in SHARDS)


def assert_equals_clean_run(workspace: Workspace, clean_run: tuple[list, list], truth: Truth) -> None:
    assert workspace.unmaterialized() == {key: set() for key in BACKFILL_KEYS}
    resources = workspace.resources
    assert statuses(resources) == {cid: truth.status(cid) for cid in truth.ids}
    assert build_view(resources).success
    table, view = clean_run
    assert query(resources, TABLE_SQL) == table
    assert query(resources, f"SELECT count() FROM {TABLE}")[0][0] == len(table)  # no duplicate, even unmerged
    assert query(resources, f"SELECT * FROM {VIEW} ORDER BY condition_id") == view


def test_kill_while_fetching_then_while_loading_then_relaunch(request, tmp_path, crash_truth: Truth, clean_run):
    """Three runs: killed mid-fetch; relaunched and killed after the first insert of the load,
    which overlaps the fetch; relaunched to the end."""
    write_fixture(tmp_path / "truth.csv", crash_truth.rows.values())
    # 4 requests/s with latency: the 16 shards' answers land over several seconds.
    slow = ("--schema", "main", "--rate-limit", "4", "--window", "1", "--latency", "0.2")
    with replica_process(tmp_path / "truth.csv", *slow) as url:
        workspace = Workspace(tmp_path, crash_truth, url)
        request.addfinalizer(workspace.stop_all)
        files = workspace.resources["files"]
        run = workspace.launch(list(BACKFILL_KEYS), SHARDS[0], SHARDS[-1])
        workspace.kill_when(run, lambda: workspace.statuses_written() >= 1)

        # 1. Killed while fetching: some shards' statuses are saved, Dagster recorded no fetch.
        assert 1 <= workspace.statuses_written() < len(SHARDS), "the kill did not land in the middle of fetching"
        assert workspace.unmaterialized() == {"missing_condition_ids": set(), "goldsky_payouts": set(SHARDS), "resolutions_external_ingest": set(SHARDS)}
        saved = [files.read("statuses", shard) for shard in SHARDS if files.exists("statuses", shard)]
        already_resolved = {cid for frame in saved for cid, s in zip(frame["condition_id"], frame["status"]) if s == "resolved"}
        assert already_resolved

        # 2. Relaunch what is not materialized; kill it after its first insert, which comes while
        # the fetch goes on: Dagster has recorded neither the fetch nor the load.
        replica_admin(url, "/_admin/config", {"rate_limit": None, "latency": 0})
        replica_admin(url, "/_stats/reset", {})
        marker = tmp_path / "inserted"
        missing = workspace.unmaterialized()
        keys = [key for key in BACKFILL_KEYS if missing[key]]
        assert keys == ["goldsky_payouts", "resolutions_external_ingest"]
        run = workspace.launch(keys, SHARDS[0], SHARDS[-1], PYTHONPATH=str(workspace.hook_dir), RELIABILITY_PAUSE_AFTER_INSERT=str(marker))
        workspace.kill_when(run, marker.exists)
        asked = {entity_id[2:] for entity_id in replica_admin(url, "/_stats/ids")["ids"]}
        # Resumed: what the first run saved is not fetched again (the shards it finished may be
        # loaded before any request goes out, so the kill can come before the first one).
        assert not asked & already_resolved
        assert workspace.unmaterialized() == missing
        # The table holds clean-run rows and nothing else, and Dagster recorded no load: the
        # relaunch below must not insert them twice.
        loaded = query(workspace.resources, TABLE_SQL)
        assert loaded and all(row in clean_run[0] for row in loaded)
        resolved = {cid for cid, status in statuses(workspace.resources).items() if status == "resolved"}

        # 3. Relaunch: it inserts nothing twice and asks nothing resolved again (the change feed
        # confirms the unsettled ids the killed run answered).
        replica_admin(url, "/_stats/reset", {})
        assert workspace.relaunch_unmaterialized() == missing
        asked = {entity_id[2:] for entity_id in replica_admin(url, "/_stats/ids")["ids"]}

    assert not asked & resolved
    assert_equals_clean_run(workspace, clean_run, crash_truth)


def step_errors(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message, its causes included, as the UI shows them."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(f"{error.cls_name}: {error.message}")
                error = error.cause
    return "\n".join(texts)


def test_clickhouse_down_while_loading_keeps_the_fetch(tmp_path):
    truth = make_truth(1000, seed=41)
    port = free_port()
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        two = [missing_condition_ids, goldsky_payouts]  # the input; the fetch and the load
        assert dg.materialize(two[:1], resources=resources, tags=FULL_RANGE).success  # the pre-flight checks pass
        working = resources["clickhouse"]
        # ClickHouse stops after the pre-flight checks: the fetch and the load run against a dead server.
        resources["clickhouse"] = ClickHouseResource(url=f"http://default:hunter2-secret@127.0.0.1:{port}/default")
        failed = dg.materialize(two, selection=two[1:], resources=resources, tags=FULL_RANGE, raise_on_error=False)
        assert not failed.success
        assert [event.step_key for event in failed.all_events if event.is_step_failure] == ["goldsky_payouts"]
        recorded = {event.materialization.asset_key.to_user_string() for event in failed.get_asset_materialization_events()}
        assert recorded == {"goldsky_payouts"}  # the fetch is recorded, the load is not
        errors = step_errors(failed)
        assert f"127.0.0.1:{port}" in errors and "hunter2" not in errors, errors
        assert statuses(resources) == {cid: truth.status(cid) for cid in truth.ids}  # the fetch is kept

        replica.reset_stats()
        resources["clickhouse"] = working
        loaded = load_only(resources)
        upstream = replica.stats()
    assert loaded.success
    assert upstream["requests"] == 0
    table = query(resources, f"SELECT condition_id, payout_numerators, payout_denominator FROM {TABLE} FINAL")
    assert {cid: (nums, den) for cid, nums, den in table} == truth.resolved()


def test_clickhouse_down_before_the_run_costs_no_payout_request(tmp_path):
    truth = make_truth(500, seed=42)
    port = free_port()
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        resources["clickhouse"] = ClickHouseResource(url=f"http://default:hunter2-secret@127.0.0.1:{port}/default")
        result = backfill(resources)
        asked = replica.requested_ids()
    assert not result.success
    assert asked == {}  # the pre-flight check stopped the run before the first payout request
    assert not result.asset_materializations_for_node("goldsky_payouts")
    ready = next(
        event.asset_check_evaluation_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and event.asset_check_evaluation_data.check_name == "clickhouse_ready"
    )
    problem = ready.metadata["problem"].value
    assert not ready.passed and f"127.0.0.1:{port}" in problem and "hunter2" not in problem
