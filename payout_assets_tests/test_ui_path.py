"""Issue 5, item 7: the UI path end to end.

`dagster-webserver` and `dagster-daemon run` start as processes of their own, from the project
directory with its workspace.yaml, on a temporary DAGSTER_HOME holding a copy of the project's
dagster.yaml, against a replica process. The backfill is launched through GraphQL with the
mutation and parameters the UI's "Materialize all partitions" dialog sends, the daemon runs it,
the asset check results are read back through GraphQL, and the table is compared with the truth.
Then headless Chromium renders the UI's asset pages, which must show the graph and the checks.

One shim, in the test only: the backfill daemon's loop sleeps a hard-coded 30 s between
iterations (`dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS`, read at each call).
The daemon is started as `python -c` that lowers it to 1 s and then calls `dagster-daemon`'s own
`main()`, so a backfill completes in seconds; everything else is the stock daemon.

Set UI_SCREENSHOT_DIR to keep the two screenshots (asset_graph.png, asset_checks.png).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest

from payout_assets.load import TABLE
from payout_assets.partitions import SHARDS
from payout_assets_tests.conftest import Truth, make_truth, random_ids
from subgraph_replica import write_fixture
from subgraph_replica.process import replica_process

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BACKFILL_KEYS = ("missing_condition_ids", "goldsky_payouts", "resolutions_external_ingest")
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")  # Debian's `chromium` package

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

EXPECTED_CHECKS = {
    "missing_condition_ids": {"input_ids_valid", "storage_writable", "clickhouse_ready", "goldsky_ready", "backfill_estimate"},
    "goldsky_payouts": {"coverage_vs_input", "fetch_health"},
    "resolutions_external_ingest": {
        "total_payouts", "payout_sums", "winning_index", "resolved_dates", "unique_condition_ids", "payout_shape",
        "agreement_with_chain",  # skipped by configuration: the chain source is off
    },
}
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}  # 1.13 reports a finished asset backfill as COMPLETED_SUCCESS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the process group (the server's code servers and run workers too), then SIGKILL."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever of the group outlived its parent
    except ProcessLookupError:
        pass
    process.wait(timeout=grace)


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
                    {"key": "dagster/asset_partition_range_start", "value": first},
                    {"key": "dagster/asset_partition_range_end", "value": last},
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


@pytest.fixture(scope="module")
def ui_truth() -> Truth:
    return make_truth(2000, seed=57)


@pytest.fixture(scope="module")
def ui(tmp_path_factory, ui_truth: Truth) -> Iterator[DagsterUI]:
    root = tmp_path_factory.mktemp("ui")
    write_fixture(root / "truth.csv", ui_truth.rows.values())
    with replica_process(root / "truth.csv") as goldsky_url:
        server = DagsterUI(root, ui_truth, goldsky_url)
        try:
            server.start()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def completed_backfill(ui: DagsterUI) -> dict:
    """All 16 shards of the three backfill assets, launched as the UI launches them."""
    backfill_id = ui.launch_backfill(list(SHARDS))
    return ui.wait_for_backfills([backfill_id])[backfill_id]


def test_ui_backfill_is_one_run_and_checks_pass(ui: DagsterUI, ui_truth: Truth, completed_backfill: dict):
    backfill = completed_backfill
    assert backfill["isAssetBackfill"] and backfill["status"] in SUCCEEDED
    assert sorted(backfill["partitionNames"]) == list(SHARDS)
    # BackfillPolicy.single_run(): one run for all three assets and all 16 shards.
    assert len(backfill["runs"]) == 1, [run["runId"] for run in backfill["runs"]]
    [run] = backfill["runs"]
    assert run["status"] == "SUCCESS"
    assert sorted(key["path"][-1] for key in run["assetSelection"]) == sorted(BACKFILL_KEYS)
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert (tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")) == (SHARDS[0], SHARDS[-1])
    assert tags.get("dagster/backfill") == backfill["id"]

    checks = ui.checks()
    assert {asset: set(by_name) for asset, by_name in checks.items()} == EXPECTED_CHECKS
    for asset, by_name in checks.items():
        for name, check in by_name.items():
            execution = check["executionForLatestMaterialization"]
            assert execution is not None, f"{asset}.{name} has no execution"
            assert execution["runId"] == run["runId"], f"{asset}.{name} ran in {execution['runId']}"
            assert execution["status"] == "SUCCEEDED", f"{asset}.{name}: {execution}"
            assert execution["evaluation"]["success"] is True
    assert all(check["blocking"] for check in checks["missing_condition_ids"].values())

    def metadata(asset: str, name: str) -> dict:
        entries = checks[asset][name]["executionForLatestMaterialization"]["evaluation"]["metadataEntries"]
        return {e["label"]: e.get("intValue", e.get("floatValue")) for e in entries}

    statuses = [ui_truth.status(cid) for cid in ui_truth.ids]
    coverage = metadata("goldsky_payouts", "coverage_vs_input")
    assert coverage["valid_input_ids"] == len(ui_truth.ids)
    assert coverage["resolved"] == statuses.count("resolved") == len(ui_truth.resolved())
    assert coverage["unresolved"] == statuses.count("unresolved")
    assert coverage["not_found"] == statuses.count("not_found")
    assert coverage["ids_without_status"] == 0
    assert metadata("goldsky_payouts", "fetch_health")["failed"] == 0
    assert metadata("resolutions_external_ingest", "total_payouts")["missing_resolved_ids"] == 0
    assert metadata("resolutions_external_ingest", "total_payouts")["unique_conditions"] == len(ui_truth.resolved())
    assert metadata("missing_condition_ids", "input_ids_valid")["valid_ids"] == len(ui_truth.ids)

    # The runs are over: nothing holds the chDB directory any more.
    assert_table_matches_truth(ui, ui_truth)


def chromium(url: str, scratch: Path, *mode: str) -> subprocess.CompletedProcess:
    profile = scratch / f"profile-{time.monotonic_ns()}"
    profile.mkdir()
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=15000", *mode, url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, start_new_session=True)


def test_ui_asset_pages_show_the_graph_and_the_checks(ui: DagsterUI, completed_backfill: dict, tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package `chromium`; .ci/run installs it): UI screenshot not taken")
    # On a loopback origin the UI opens a "Join the Dagster community" dialog over every page
    # until it is dismissed; its Skip button sends this mutation.
    assert ui.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    group = f"{ui.url}/locations/{ui.repository()}@payout_assets/asset-groups/payouts"
    graph = chromium(group, tmp_path, "--dump-dom")
    assert graph.returncode == 0, graph.stderr[-3000:]
    assert "Empty graph" not in graph.stdout
    for key in (*BACKFILL_KEYS, "vw_resolutions_truth"):
        assert f">{key}<" in graph.stdout, f"{key} is not on the asset graph"
    # Each node's "Asset checks" row: all of the asset's checks passed.
    for key, names in EXPECTED_CHECKS.items():
        assert f"{len(names)} / {len(names)} Passed" in graph.stdout, f"the graph does not show {key}'s checks passed"

    checks_page = f"{ui.url}/assets/resolutions_external_ingest?view=checks"
    dom = chromium(checks_page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    for name in EXPECTED_CHECKS["resolutions_external_ingest"]:
        assert f">{name}<" in dom.stdout, f"check {name} is not on the asset's checks page"
    assert dom.stdout.count(">Succeeded<") == len(EXPECTED_CHECKS["resolutions_external_ingest"])

    screenshots = Path(os.environ.get("UI_SCREENSHOT_DIR", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    for name, url in (("asset_graph.png", group), ("asset_checks.png", checks_page)):
        shot = chromium(url, tmp_path, f"--screenshot={screenshots / name}")
        assert shot.returncode == 0 and (screenshots / name).stat().st_size > 10_000, shot.stderr[-3000:]


START_SENSOR = """
mutation StartSensor($sensorSelector: SensorSelector!) {
  startSensor(sensorSelector: $sensorSelector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

SENSOR_RUNS = """
query SensorRuns($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { __typename ... on Runs { results { runId status tags { key value } } } }
}
"""

AUTOMATIONS = """
query Automations($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) { assetKey { path } targetingInstigators { __typename ... on Sensor { name } } }
}
"""


def test_the_daemon_runs_the_switched_on_sensor_and_the_run_loads_new_ids(ui: DagsterUI, completed_backfill: dict):
    """The sensor as a deployment runs it: listed under each asset's automations, switched on
    with the UI toggle's mutation, ticked by the stock daemon, its run queued and completed."""
    nodes = ui.graphql(AUTOMATIONS, {"assetKeys": [{"path": [key]} for key in BACKFILL_KEYS]})["assetNodes"]
    for node in nodes:
        assert {i["name"] for i in node["targetingInstigators"]} == {"new_and_unresolved_payouts"}, node

    new_ids = random_ids(5, seed=777)
    rows = [{"id": f"0x{cid}", "payout_numerators": ["1", "0"], "payout_denominator": "1", "change_block": 1}
            for cid in new_ids]
    base = ui.goldsky_url.split("/subgraphs/")[0]
    request = urllib.request.Request(f"{base}/_admin/conditions", json.dumps({"rows": rows}).encode(),
                                     {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()
    with open(ui.env["PAYOUT_INPUT_IDS"], "a") as handle:
        handle.write("\n".join(new_ids) + "\n")

    selector = {"repositoryLocationName": "payout_assets", "repositoryName": ui.repository(),
                "sensorName": "new_and_unresolved_payouts"}
    started = ui.graphql(START_SENSOR, {"sensorSelector": selector})["startSensor"]
    assert started["__typename"] == "Sensor" and started["sensorState"]["status"] == "RUNNING", started

    tags = [{"key": "dagster/sensor_name", "value": "new_and_unresolved_payouts"}]
    deadline = time.monotonic() + BACKFILL_TIMEOUT
    while not (runs := ui.graphql(SENSOR_RUNS, {"tags": tags})["runsOrError"]["results"]) or \
            runs[0]["status"] not in ("SUCCESS", "FAILURE", "CANCELED"):
        ui._assert_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"no completed sensor run within {BACKFILL_TIMEOUT} s: {runs}\n{ui.log('daemon')}")
        time.sleep(0.5)
    assert len(runs) == 1, runs
    assert runs[0]["status"] == "SUCCESS", ui.run_errors(runs[0]["runId"])
    table, _ = ui.table()
    assert {cid: table[cid][:2] for cid in new_ids if cid in table} == {cid: ([1, 0], 1) for cid in new_ids}
