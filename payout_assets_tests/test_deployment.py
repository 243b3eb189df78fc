"""A Dagster deployment (issue 15): deploy/dagster.yaml with a real Postgres behind it.

Postgres storage, the run queue and the Docker run launcher load (no Docker engine is needed
until a run is launched); the code location loads under that instance from any working
directory and refuses the embedded chDB default; the run queue holds a second run of ours
while another holds the `goldsky` pool. Postgres comes from Debian's `postgresql` package
(.ci/run installs it); without it these tests skip saying so.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.remote_representation.external import RemoteJob
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

from payout_assets.definitions import build_defs
from payout_assets.partitions import RANGE_TAGS, SHARDS
from payout_assets.resources.clickhouse import ClickHouseUrlRefused, check_embedded_allowed
from payout_assets.settings import PROJECT_DIR
from payout_assets_tests.support.processes import free_port

pytestmark = pytest.mark.slow  # process-level: `make test-fast` skips it
DEPLOY_CONFIG = PROJECT_DIR / "deploy" / "dagster.yaml"
BIN = Path(sys.executable).parent
BACKFILL = ["missing_condition_ids", "goldsky_payouts", "resolutions_external_ingest"]


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    return Path(found[-1]).parent if found[-1] else None


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, str]]:
    """A throwaway Postgres server on a loopback port; the DAGSTER_POSTGRES_* variables for it."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are missing (Debian package `postgresql`; .ci/run installs it)")
    # Postgres refuses to run as root: as root, its files and processes belong to `postgres`.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="payout-pg-"))
    if as_user:
        shutil.chown(data, "postgres")
    port = free_port()
    run = lambda *command: subprocess.run([*as_user, *command], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "dagster", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w", "-o", f"-p {port} -k {data} -h 127.0.0.1", "start")
    try:
        yield {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": str(port), "DAGSTER_POSTGRES_USER": "dagster",
               "DAGSTER_POSTGRES_PASSWORD": "unused-with-trust-auth"}
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def deployment(postgres: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh database and DAGSTER_HOME holding deploy/dagster.yaml as it is; the environment for both."""
    database = f"dagster_{request.node.name.lower()}"[:63]
    connection = psycopg2.connect(host="127.0.0.1", port=postgres["DAGSTER_POSTGRES_PORT"], user="dagster", dbname="postgres")
    try:
        connection.autocommit = True  # CREATE DATABASE runs outside a transaction
        connection.cursor().execute(f'CREATE DATABASE "{database}"')
    finally:
        connection.close()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_CONFIG, home / "dagster.yaml")
    env = {**postgres, "DAGSTER_POSTGRES_DB": database, "DAGSTER_HOME": str(home), "PAYOUT_DATA_DIR": str(tmp_path / "data")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("CLICKHOUSE_URL", "PAYOUT_INPUT_IDS", "PAYOUT_SHARDS_DIR"):
        monkeypatch.delenv(name, raising=False)
    return env


def test_the_deployment_instance_is_postgres_the_run_queue_and_docker(deployment: dict[str, str]):
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"
        pools = instance.get_concurrency_config().pool_config
        assert (pools.pool_granularity.value, pools.default_pool_limit) == ("run", 1)
        with pytest.raises(ClickHouseUrlRefused, match="launches runs with DockerRunLauncher.*Set CLICKHOUSE_URL"):
            check_embedded_allowed("chdb:///var/lib/payout-assets/chdb", instance)
        check_embedded_allowed("https://default:secret@example.invalid:8443/default", instance)  # a server is what it wants


def test_the_code_location_loads_under_the_deployment_anywhere_and_refuses_the_chdb_default(deployment: dict[str, str], tmp_path: Path):
    """The README's backfill command, run outside the checkout against the deployment's instance."""
    command = [str(BIN / "dagster"), "asset", "materialize", "-m", "payout_assets", "--select", ",".join(BACKFILL),
               "--partition-range", f"{SHARDS[0]}...{SHARDS[-1]}"]
    env = {key: value for key, value in os.environ.items() if key != "CLICKHOUSE_URL"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"CLICKHOUSE_URL is the embedded chDB directory {tmp_path / 'data' / 'chdb'}" in output
    assert "Set CLICKHOUSE_URL to your ClickHouse server" in output
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()  # recorded in Postgres
        assert run.status == dg.DagsterRunStatus.FAILURE
        assert not instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
    assert not (tmp_path / "data" / "chdb").exists()


@contextmanager
def asset_job_of_code_location(instance: dg.DagsterInstance) -> Iterator[RemoteJob]:
    """The code location served as a deployment serves it (a gRPC code server) under `instance`."""
    with WorkspaceProcessContext(instance, ModuleTarget("payout_assets", None, None, "payout_assets")) as workspace:
        context = workspace.create_request_context()
        assert context.get_code_location_error("payout_assets") is None
        yield context.get_code_location("payout_assets").get_repository("__repository__").get_full_job("__ASSET_JOB")


def queue_backfill(instance: dg.DagsterInstance, job: RemoteJob, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """A run of the three backfill assets over every shard, as the UI's Materialize creates it."""
    return instance.create_run_for_job(
        build_defs().resolve_implicit_global_asset_job_def(),
        status=status,
        asset_selection={dg.AssetKey(name) for name in BACKFILL},
        tags=dict(zip(RANGE_TAGS, (SHARDS[0], SHARDS[-1]))),
        remote_job_origin=job.get_remote_origin(),
    )


def dequeued_now(instance: dg.DagsterInstance) -> list[str]:
    """The queued runs the daemon's next pass would launch."""
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    return [run.run_id for run in daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), None)]


def test_the_run_queue_holds_a_second_backfill_while_one_holds_the_goldsky_pool(deployment: dict[str, str]):
    # The README's one-time step: the pool limits exist before the first run names them.
    for pool in ("goldsky", "clickhouse"):
        subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", pool, "1"], check=True, capture_output=True)
    with dg.DagsterInstance.get() as instance, asset_job_of_code_location(instance) as job:
        first, second = (queue_backfill(instance, job, dg.DagsterRunStatus.QUEUED) for _ in range(2))
        assert first.run_op_concurrency.all_pools == {"goldsky", "clickhouse"}
        assert dequeued_now(instance) == [first.run_id]  # two queued together: one goes
        instance.report_run_canceled(first)
        running = queue_backfill(instance, job, dg.DagsterRunStatus.STARTED)
        assert dequeued_now(instance) == []  # one running: the other waits
        instance.report_run_canceled(running)
        assert dequeued_now(instance) == [second.run_id]
