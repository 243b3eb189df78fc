"""The Dagster UI as a deployment runs it, for tests: `dagster-webserver` and `dagster-daemon`
as processes of their own, from the project directory with its workspace.yaml, on a temporary
DAGSTER_HOME holding a copy of the project's dagster.yaml, driven through the UI's GraphQL.

One shim: the daemon's loop sleeps a hard-coded 30 s between iterations
(`dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS`, read at each call). The daemon
is started as `python -c` that lowers it to 1 s and then calls `dagster-daemon`'s own `main()`;
everything else is the stock daemon.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import clickhouse_connect
import pytest

from payout_assets.load import TABLE
from payout_assets.partitions import RANGE_TAGS
from payout_assets_tests.support import BACKFILL_KEYS, Truth
from payout_assets_tests.support.processes import free_port, stop_group

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

START_TIMEOUT = 60  # webserver answering and the code location loaded
BACKFILL_TIMEOUT = 120
DAEMON_LOOP_SECONDS = 1

DAEMON_MAIN = (
    "import sys, dagster._daemon.controller as controller; "
    f"controller.DEFAULT_DAEMON_INTERVAL_SECONDS = {DAEMON_LOOP_SECONDS}; "
    "from dagster._daemon.cli import main; sys.argv[0] = 'dagster-daemon'; sys.exit(main())"
)

# The UI's own mutation (dagster-webserver's bundle, `LaunchPartitionBackfill`), trimmed to the
# result types a pure asset backfill can answer.
LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConflict { message }
    ... on PythonError { message stack }
  }
}
"""

BACKFILL_STATUS = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id status numPartitions partitionNames isAssetBackfill
      assetSelection { path }
      error { message stack }
      runs { runId status creationTime startTime endTime assetSelection { path } tags { key value } }
    }
    ... on PythonError { message }
    ... on BackfillNotFoundError { message }
  }
}
"""

LAUNCH_RUN = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
  }
}
"""

RUNS = """
query Runs($ids: [String]) {
  runsOrError(filter: {runIds: $ids}) {
    __typename
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } assetSelection { path } } }
  }
}
"""

RUN_FAILURES = """
query RunLogs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message }
        ... on ErrorEvent { error { message } }
      }
    }
  }
}
"""

CHECKS = """
query Checks($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    assetChecksOrError {
      __typename
      ... on AssetChecks {
        checks {
          name blocking
          executionForLatestMaterialization {
            runId status
            evaluation {
              success severity
              metadataEntries { label ... on IntMetadataEntry { intValue } ... on FloatMetadataEntry { floatValue } }
            }
          }
        }
      }
    }
  }
}
"""

WORKSPACE = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError {
    __typename ... on PythonError { message } ... on RepositoryLocation { repositories { name } } } } } } }
"""

FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}  # 1.13 reports a finished asset backfill as COMPLETED_SUCCESS



class DagsterUI:
    """A temporary DAGSTER_HOME, input file, shards dir and chDB dir; the webserver and daemon on them."""

    def __init__(self, root: Path, truth: Truth, goldsky_url: str) -> None:
        self.root = root
        self.home = root / "dagster_home"
        self.home.mkdir()
        (self.home / "dagster.yaml").write_text((PROJECT / "dagster.yaml").read_text())
        input_file = root / "ids.txt"
        input_file.write_text("\n".join(truth.ids) + "\n")
        self.chdb_dir = root / "chdb"
        self.shards_dir = root / "shards"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "GOLDSKY_URL": goldsky_url,
            "GOLDSKY_RATE_LIMIT": "1000",
            "GOLDSKY_BACKOFF_SECONDS": "0.05",
            "CLICKHOUSE_URL": f"chdb://{self.chdb_dir}",
            "PAYOUT_INPUT_IDS": str(input_file),
            "PAYOUT_SHARDS_DIR": str(self.shards_dir),
            "PAYOUT_SENSOR_INTERVAL_SECONDS": "1",  # off until a test switches it on, then every tick
        }
        self.goldsky_url = goldsky_url
        self.processes: dict[str, subprocess.Popen] = {}

    # processes
    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.root / f"{name}.log", "w")
        self.processes[name] = subprocess.Popen(
            command, cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def start(self, daemon: bool = True) -> None:
        """The webserver, answering with the code location loaded; then the daemon unless told not to."""
        self._spawn("webserver", [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)])
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            self._assert_alive()
            assert time.monotonic() < deadline, f"the webserver did not answer within {START_TIMEOUT} s:\n{self.log('webserver')}"
            time.sleep(0.25)
        while (entry := self._location()) is None or entry["loadStatus"] != "LOADED":
            self._assert_alive()
            assert time.monotonic() < deadline, f"the code location did not load within {START_TIMEOUT} s: {entry}"
            time.sleep(0.25)
        error = entry["locationOrLoadError"]
        assert error["__typename"] == "RepositoryLocation", f"the code location failed to load: {error}"
        if daemon:
            self.start_daemon()

    def start_daemon(self) -> None:
        # Only once the webserver answers: two processes creating a fresh DAGSTER_HOME's SQLite
        # storages at once race ("table alembic_version already exists").
        self._spawn("daemon", [sys.executable, "-c", DAEMON_MAIN, "run", "-w", "workspace.yaml"])

    def repository(self) -> str:
        """The repository name the UI's URLs carry (`__repository__` for a `Definitions`)."""
        [repository] = self._location()["locationOrLoadError"]["repositories"]
        return repository["name"]

    def stop(self) -> None:
        for process in reversed(self.processes.values()):  # the daemon first: no run starts meanwhile
            stop_group(process)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _location(self) -> dict | None:
        entries = self.graphql(WORKSPACE)["workspaceOrError"].get("locationEntries") or []
        return next((entry for entry in entries if entry["name"] == "payout_assets"), None)

    def _assert_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log(name)}"

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text()[-6000:] if path.exists() else ""

    # GraphQL
    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]

    def launch_backfill(self, partitions: list[str], keys: tuple[str, ...] = BACKFILL_KEYS) -> str:
        """What the UI's launch dialog sends for an asset backfill of these partitions."""
        params = {
            "partitionNames": partitions,
            "assetSelection": [{"path": [key]} for key in keys],
            "fromFailure": False,
        }
        result = self.graphql(LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    def launch_run(self, keys: tuple[str, ...], first: str, last: str) -> str:
        """What the UI's launch dialog sends for a partition range "as a single run": the range as tags."""
        params = {
            "selector": {
                "repositoryLocationName": "payout_assets",
                "repositoryName": self.repository(),
                "pipelineName": "__ASSET_JOB",
                "assetSelection": [{"path": [key]} for key in keys],
            },
            "runConfigData": {},
            "mode": "default",
            "executionMetadata": {
                "tags": [
                    {"key": tag, "value": shard} for tag, shard in zip(RANGE_TAGS, (first, last))
                ]
            },
        }
        result = self.graphql(LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def runs(self, run_ids: list[str]) -> list[dict]:
        return self.graphql(RUNS, {"ids": run_ids})["runsOrError"]["results"]

    def wait_for_runs(self, run_ids: list[str], timeout: float = BACKFILL_TIMEOUT) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(run_ids)
            if all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs):
                return runs
            self._assert_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"runs not finished within {timeout} s: {[(r['runId'], r['status']) for r in runs]}\n{self.log('daemon')}")
            time.sleep(0.5)

    def backfill(self, backfill_id: str) -> dict:
        result = self.graphql(BACKFILL_STATUS, {"backfillId": backfill_id})["partitionBackfillOrError"]
        assert result["__typename"] == "PartitionBackfill", result
        return result

    def run_errors(self, run_id: str) -> list[str]:
        events = self.graphql(RUN_FAILURES, {"runId": run_id})["logsForRun"].get("events") or []
        return [
            f"{event['__typename']}: {event.get('message')} {event['error']['message'] if event.get('error') else ''}"
            for event in events
            if "Fail" in event["__typename"] or event.get("error")
        ]

    def wait_for_backfills(self, backfill_ids: list[str], timeout: float = BACKFILL_TIMEOUT) -> dict[str, dict]:
        """Poll until every backfill has finished; fail with its runs' errors unless it completed successfully."""
        deadline = time.monotonic() + timeout
        while True:
            backfills = {backfill_id: self.backfill(backfill_id) for backfill_id in backfill_ids}
            done = all(
                b["status"] in FINISHED and all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in b["runs"])
                for b in backfills.values()
            )
            if done:
                break
            self._assert_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"backfills not finished within {timeout} s: {self._describe(backfills)}\n{self.log('daemon')}")
            time.sleep(0.5)
        for backfill_id, b in backfills.items():
            if b["status"] not in SUCCEEDED or any(run["status"] != "SUCCESS" for run in b["runs"]):
                errors = {run["runId"]: self.run_errors(run["runId"]) for run in b["runs"]}
                pytest.fail(f"backfill {backfill_id} ended {b['status']}: {b['error']}\nrun errors: {errors}\n{self._describe(backfills)}")
        return backfills

    @staticmethod
    def _describe(backfills: dict[str, dict]) -> str:
        return json.dumps({k: {"status": b["status"], "runs": [(r["runId"], r["status"]) for r in b["runs"]]} for k, b in backfills.items()})

    def checks(self) -> dict[str, dict[str, dict]]:
        """Asset key → check name → its check node, from the UI's own fields."""
        nodes = self.graphql(CHECKS, {"assetKeys": [{"path": [key]} for key in BACKFILL_KEYS]})["assetNodes"]
        result = {}
        for node in nodes:
            checks = node["assetChecksOrError"]
            assert checks["__typename"] == "AssetChecks", checks
            result[node["assetKey"]["path"][-1]] = {check["name"]: check for check in checks["checks"]}
        return result

    # ClickHouse, opened only once no run holds the directory
    def table(self) -> tuple[dict[str, tuple[list[int], int, int]], int]:
        """Table rows under FINAL (id → numerators, denominator, winning index), and rows before merging."""
        client = clickhouse_connect.get_client(dsn=f"chdb://{self.chdb_dir}")
        try:
            rows = client.query(f"SELECT condition_id, payout_numerators, payout_denominator, winning_index FROM {TABLE} FINAL").result_rows
            unmerged = client.query(f"SELECT count() FROM {TABLE}").result_rows[0][0]
        finally:
            client.close()
        return {cid: (list(nums), den, index) for cid, nums, den, index in rows}, unmerged


def assert_table_matches_truth(ui: DagsterUI, truth: Truth) -> None:
    table, unmerged = ui.table()
    expected = truth.resolved()
    assert {cid: (nums, den) for cid, (nums, den, _) in table.items()} == expected
    assert all(index == nums.index(max(nums)) for nums, _, index in table.values())
    assert unmerged == len(expected)  # no duplicate, even before merges
