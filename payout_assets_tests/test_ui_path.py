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

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from payout_assets.partitions import RANGE_TAGS, SHARDS
from payout_assets_tests.support import Truth, make_truth, random_ids
from payout_assets_tests.support.dagster_ui import (
    BACKFILL_KEYS,
    BACKFILL_TIMEOUT,
    SUCCEEDED,
    DagsterUI,
    assert_table_matches_truth,
)
from payout_assets_tests.support.processes import replica_admin
from subgraph_replica import write_fixture
from subgraph_replica.process import replica_process

pytestmark = pytest.mark.slow  # process-level: `make test-fast` skips it

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")  # Debian's `chromium` package

EXPECTED_CHECKS = {
    "missing_condition_ids": {"input_ids_valid", "storage_writable", "clickhouse_ready", "goldsky_ready", "backfill_estimate"},
    "goldsky_payouts": {"coverage_vs_input", "fetch_health"},
    "resolutions_external_ingest": {
        "total_payouts", "payout_sums", "winning_index", "resolved_dates", "unique_condition_ids", "payout_shape",
        "agreement_with_chain",  # skipped by configuration: the chain source is off
    },
}

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
    assert tuple(tags.get(tag) for tag in RANGE_TAGS) == (SHARDS[0], SHARDS[-1])
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
    replica_admin(ui.goldsky_url, "/_admin/conditions", {"rows": rows})
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
