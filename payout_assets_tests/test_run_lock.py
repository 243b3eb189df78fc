"""One run at a time per data directory, whoever starts it (issue 11).

Two backfills started from a shell, with the same DAGSTER_HOME and chDB directory, both ran:
every id fetched twice, the rows inserted twice, or one failed on "chDB in use". The run
queue's limit holds only for runs it launches. Now each run holds a lock file in its shard
and chDB directories from its first step to its last, and a second run waits for it.
"""

import atexit
import gc
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from filelock import FileLock

from payout_assets.load import TABLE
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.goldsky import GoldskyResource, _process_limiter
from payout_assets.resources.run_lock import LOCK_FILE, RunLock
from payout_assets_tests.support import (
    BACKFILL,
    BACKFILL_COMMAND,
    FULL_RANGE,
    Truth,
    backfill,
    failed_checks,
    make_resources,
    make_truth,
    query,
)
from subgraph_replica import ReplicaServer, write_fixture
from subgraph_replica.process import replica_process

pytestmark = pytest.mark.slow  # process-level: `make test-fast` skips it

PROJECT = Path(__file__).resolve().parent.parent
# A backfill of these 2,000 ids sends 3 requests (a discovery, two batches): one run fits the
# limit, two runs in one window would not.
LIMIT = 4
WINDOW = 3.0


def log_messages(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


def test_a_run_waits_for_the_run_holding_the_directory_and_says_so(resources: dict, truth: Truth, tmp_path: Path):
    lock = FileLock(Path(resources["files"].shards_dir) / LOCK_FILE)
    lock.acquire()  # another run of this directory, in progress
    (Path(resources["files"].shards_dir) / LOCK_FILE).write_text(json.dumps({"run_id": "earlier-run", "pid": 4242, "since": "now"}))
    results: list[dg.ExecuteInProcessResult] = []
    # On disk: an in-memory instance read from this thread while the run writes to it from its
    # own failed the run's writes ("database table is locked: runs", 2026-12-03).
    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    runner = threading.Thread(target=lambda: results.append(dg.materialize(BACKFILL, resources=resources, tags=FULL_RANGE, instance=instance)))
    runner.start()
    deadline = time.monotonic() + 60
    while not any("waiting for the run lock" in entry.user_message for run in instance.get_runs() for entry in instance.all_logs(run.run_id)):
        assert time.monotonic() < deadline and runner.is_alive(), "the run never said it waits"
        time.sleep(0.05)
    assert runner.is_alive() and not resources["files"].exists("ids", "0")  # waiting, not working
    lock.release()
    runner.join(timeout=120)
    [result] = results
    assert result.success
    waiting = [m for m in log_messages(instance, result) if m.startswith("waiting for the run lock")]
    assert waiting == [f"waiting for the run lock {Path(resources['files'].shards_dir).resolve() / LOCK_FILE}, held by run earlier-run (pid 4242, since now): this run starts when that one ends"]


def test_a_run_gives_up_with_a_clear_message_when_the_wait_is_over(resources: dict):
    resources["run_lock"] = RunLock(files=resources["files"], clickhouse=resources["clickhouse"], wait_seconds=0.2)
    with FileLock(Path(resources["clickhouse"].embedded_directory) / LOCK_FILE):
        result = dg.materialize(BACKFILL, resources=resources, tags=FULL_RANGE, raise_on_error=False)
    assert not result.success and not result.get_asset_materialization_events()
    [failure] = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert f"{resources['clickhouse'].embedded_directory} is in use by another process; gave up after 0 s" in failure


def test_the_lock_is_free_again_after_a_failed_run(resources: dict):
    Path(resources["files"].input_ids_path).unlink()  # missing_condition_ids fails
    assert not dg.materialize(BACKFILL, resources=resources, tags=FULL_RANGE, raise_on_error=False).success
    for directory in (Path(resources["files"].shards_dir), resources["clickhouse"].embedded_directory):
        FileLock(directory / LOCK_FILE).acquire(timeout=0)


def replica_stats(url: str, path: str = "/_stats") -> dict:
    with urllib.request.urlopen(url.split("/subgraphs/")[0] + path, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def shell_truth() -> Truth:
    return make_truth(2000, seed=111)


def wait_for(condition, what: str, runs: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert all(run.poll() is None for run in runs), f"a run ended before {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def test_two_backfills_started_from_a_shell_at_once_take_turns(tmp_path: Path, shell_truth: Truth):
    write_fixture(tmp_path / "truth.csv", shell_truth.rows.values())
    (tmp_path / "ids.txt").write_text("\n".join(shell_truth.ids) + "\n")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    # The instance's SQLite storage made once, now: two CLIs creating it at the same moment
    # race ("table alembic_version already exists") and one exits before the lock is tried.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    with replica_process(tmp_path / "truth.csv", "--rate-limit", str(LIMIT), "--window", "10") as url:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "GOLDSKY_URL": url,
            "CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
            "PAYOUT_INPUT_IDS": str(tmp_path / "ids.txt"),
            "PAYOUT_SHARDS_DIR": str(tmp_path / "shards"),
            "GOLDSKY_RATE_LIMIT": str(LIMIT),
        }
        logs = [tmp_path / "run1.log", tmp_path / "run2.log"]
        # Both runs start while the shard directory is busy, so they surely meet, whatever
        # the machine's load: the test holds the lock until both say they wait.
        (tmp_path / "shards").mkdir()
        gate = FileLock(tmp_path / "shards" / LOCK_FILE)
        gate.acquire()
        runs = []
        try:
            for log_path in logs:
                with open(log_path, "w") as log:
                    runs.append(subprocess.Popen(BACKFILL_COMMAND, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT))
            wait_for(lambda: all("waiting for the run lock" in log.read_text() for log in logs), "both runs waiting", runs)
            gate.release()
            codes = [run.wait(timeout=180) for run in runs]
        finally:
            gate.release()
            for run in runs:
                if run.poll() is None:
                    run.kill()
        assert codes == [0, 0], logs[1].read_text()[-3000:]
        asked = replica_stats(url, "/_stats/ids")["ids"]
        served = replica_stats(url)
    resolved = shell_truth.resolved()
    assert all(asked[f"0x{cid}"] == 1 for cid in resolved)  # a resolved id is never fetched again
    raw_rows = query({"clickhouse": ClickHouseResource(url=env["CLICKHOUSE_URL"])}, f"SELECT count() FROM {TABLE}")
    assert raw_rows == [(len(resolved),)]  # inserted once, even before a merge
    assert served["rate_limited"] == 0 and served["max_in_window"] <= LIMIT


def test_a_run_in_a_new_process_counts_the_last_runs_requests(tmp_path: Path, shell_truth: Truth):
    """Runs take turns, but the next may start within the last's window: its limiter (a new
    process's) reads the last window's request starts from the shard directory."""
    with ReplicaServer(shell_truth.rows.values(), rate_limit=LIMIT, window_seconds=WINDOW) as replica:
        resources = make_resources(tmp_path, replica.url, shell_truth.ids)
        resources["goldsky"] = GoldskyResource(
            url=replica.url, rate_limit=LIMIT, window_seconds=WINDOW, history_dir=resources["files"].shards_dir, max_attempts=1
        )
        assert backfill(resources).success
        first = replica.stats()["accepted"]
        _process_limiter.cache_clear()  # as in the next run's process
        started = time.monotonic()
        again = backfill(resources)
        stats = replica.stats()
    assert again.success and not failed_checks(again)
    assert stats["accepted"] + first > LIMIT  # together they would overrun one window...
    assert stats["rate_limited"] == 0 and stats["max_in_window"] <= LIMIT  # ...they did not
    assert time.monotonic() - started < 3 * WINDOW


def test_a_run_lets_its_process_exit_without_a_final_collection(resources: dict, monkeypatch: pytest.MonkeyPatch):
    registered: list = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(atexit, "unregister", lambda function: registered.remove(function) if function in registered else None)

    @dg.asset(required_resource_keys={"run_lock"})
    def uses_the_lock() -> None: ...

    for _ in range(2):  # two runs in one process (a test, a code server): one exit hook
        assert dg.materialize([uses_the_lock], resources={"run_lock": resources["run_lock"]}).success
    assert registered.count(gc.freeze) == 1
