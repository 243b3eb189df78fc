"""One run at a time per data directory, whoever starts it (issue 11).

Two backfills started from a shell, with the same DAGSTER_HOME and chDB directory, both ran:
every id fetched twice, the rows inserted twice, or one failed on "chDB in use". The run
queue's limit holds only for runs it launches. Now each run holds a lock file in its shard
and chDB directories from its first step to its last, and a second run waits for it.
"""

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
from payout_assets.resources.run_lock import LOCK_FILE, RunLock
from payout_assets_tests.support import BACKFILL, BACKFILL_COMMAND, FULL_RANGE, Truth, make_truth, query
from subgraph_replica import write_fixture
from subgraph_replica.process import replica_process

pytestmark = pytest.mark.slow  # process-level: `make test-fast` skips it

PROJECT = Path(__file__).resolve().parent.parent
LIMIT = 18  # a run here sends 17 requests (a discovery, one per shard); the second run a few


def log_messages(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


def test_a_run_waits_for_the_run_holding_the_directory_and_says_so(resources: dict, truth: Truth):
    lock = FileLock(Path(resources["files"].shards_dir) / LOCK_FILE)
    lock.acquire()  # another run of this directory, in progress
    (Path(resources["files"].shards_dir) / LOCK_FILE).write_text(json.dumps({"run_id": "earlier-run", "pid": 4242, "since": "now"}))
    results: list[dg.ExecuteInProcessResult] = []
    instance = dg.DagsterInstance.ephemeral()
    runner = threading.Thread(target=lambda: results.append(dg.materialize(BACKFILL, resources=resources, tags=FULL_RANGE, instance=instance)))
    runner.start()
    time.sleep(1.5)  # the run is waiting, not working: nothing of it is on disk yet
    assert runner.is_alive() and not resources["files"].exists("ids", "0")
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


def test_two_backfills_from_a_shell_at_once_take_turns_within_the_upstream_limit(tmp_path: Path, shell_truth: Truth):
    write_fixture(tmp_path / "truth.csv", shell_truth.rows.values())
    (tmp_path / "ids.txt").write_text("\n".join(shell_truth.ids) + "\n")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    # A slow upstream keeps the first run fetching while the second starts. Each run's
    # requests fit the limit of 18 per 10 s; the two runs' together would not.
    with replica_process(tmp_path / "truth.csv", "--latency", "1.5", "--rate-limit", str(LIMIT), "--window", "10") as url:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "GOLDSKY_URL": url,
            "CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
            "PAYOUT_INPUT_IDS": str(tmp_path / "ids.txt"),
            "PAYOUT_SHARDS_DIR": str(tmp_path / "shards"),
            "GOLDSKY_RATE_LIMIT": str(LIMIT),
        }
        command = BACKFILL_COMMAND
        runs = []
        for number in (1, 2):
            with open(tmp_path / f"run{number}.log", "w") as log:
                runs.append(subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT))
            if number == 1:  # the second starts once the first holds the directory
                deadline = time.monotonic() + 60
                while not (tmp_path / "shards" / LOCK_FILE).exists() or not (tmp_path / "shards" / LOCK_FILE).read_text():
                    assert time.monotonic() < deadline and runs[0].poll() is None, (tmp_path / "run1.log").read_text()[-3000:]
                    time.sleep(0.05)
        try:
            codes = [run.wait(timeout=180) for run in runs]
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
        logs = [(tmp_path / f"run{n}.log").read_text() for n in (1, 2)]
        assert codes == [0, 0], logs[1][-3000:]
        asked = replica_stats(url, "/_stats/ids")["ids"]
        served = replica_stats(url)
    assert "waiting for the run lock" in logs[1] and "waiting for the run lock" not in logs[0]
    # The second run's limiter counted the first run's requests of the last window.
    assert served["requests"] > LIMIT  # together the two runs would overrun a window...
    assert served["rate_limited"] == 0 and served["max_in_window"] <= LIMIT  # ...and they did not
    resolved = shell_truth.resolved()
    assert all(asked[f"0x{cid}"] == 1 for cid in resolved)  # a resolved id is never fetched again
    raw_rows = query({"clickhouse": ClickHouseResource(url=env["CLICKHOUSE_URL"])}, f"SELECT count() FROM {TABLE}")
    assert raw_rows == [(len(resolved),)]  # inserted once, even before a merge
