"""The code location loads, with the asset keys, partitions and policies DESIGN.md fixes."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from payout_assets import defs, settings
from payout_assets.definitions import build_defs, make_resources
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.settings import SettingError
from payout_assets_tests.support import BACKFILL_KEYS
from payout_assets.partitions import SHARDS

PARTITIONED = list(BACKFILL_KEYS)


def test_asset_graph_keys_partitions_and_policies():
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {*PARTITIONED, "vw_resolutions_truth"}
    for name in PARTITIONED:
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def.get_partition_keys() == list(SHARDS)
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
    view = graph.get(dg.AssetKey("vw_resolutions_truth"))
    assert view.partitions_def is None
    assert dg.AssetKey("resolutions_external_ingest") in view.parent_keys


def test_every_check_is_registered_and_preflight_blocks():
    checks = {key.name: key.asset_key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys}
    assert len(checks) == 16
    assert checks["goldsky_ready"] == "missing_condition_ids"
    assert checks["integration_readiness"] == "vw_resolutions_truth"
    assert checks["agreement_with_chain"] == "resolutions_external_ingest"
    # The pre-flight checks are the input asset's own, run as it reads the input, and they block.
    preflight = defs.resolve_assets_def("missing_condition_ids").check_specs
    assert {spec.name for spec in preflight} == {"input_ids_valid", "storage_writable", "clickhouse_ready", "goldsky_ready", "backfill_estimate"}
    assert all(spec.blocking for spec in preflight)


def test_sensor_is_off_by_default():
    sensor = defs.resolve_sensor_def("new_and_unresolved_payouts")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.description


def test_secrets_from_the_environment_stay_env_vars(monkeypatch):
    monkeypatch.setenv("GOLDSKY_API_KEY", "key-from-env")
    monkeypatch.setenv("CLICKHOUSE_URL", "http://default:pw-from-env@127.0.0.1:8123/default")
    monkeypatch.setenv("POLYGON_RPC_URL", "https://polygon.example/v2/key-from-env")
    resources = make_resources()
    assert isinstance(resources["goldsky"].api_key, dg.EnvVar)
    assert isinstance(resources["clickhouse"].url, dg.EnvVar)
    assert isinstance(resources["chain"].rpc_url, dg.EnvVar)
    assert "key-from-env" not in make_resources(settings.value)["chain"].display_url


def test_a_setting_that_is_not_a_number_names_its_variable(monkeypatch):
    monkeypatch.setenv("PAYOUT_SENSOR_INTERVAL_SECONDS", "daily")
    with pytest.raises(SettingError, match="PAYOUT_SENSOR_INTERVAL_SECONDS='daily' is not an integer"):
        build_defs()


def test_the_sensor_schedule_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv("PAYOUT_SENSOR_INTERVAL_SECONDS", "3600")
    monkeypatch.setenv("PAYOUT_RECHECK_HOURS", "6")
    sensor = build_defs().resolve_sensor_def("new_and_unresolved_payouts")
    assert sensor.minimum_interval_seconds == 3600
    assert "6 h less 1 h after their last check" in sensor.description


def dagster_asset_list(**env: str) -> subprocess.CompletedProcess:
    """`dagster asset list -m payout_assets`, as a user types it, with `env` added to ours."""
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "dagster"), "asset", "list", "-m", "payout_assets"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


@pytest.mark.slow
def test_the_cli_loads_the_code_location_by_module_name():
    listed = dagster_asset_list()
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == {*PARTITIONED, "vw_resolutions_truth"}


# One refused setting a line: variable | value | the message that must name it.
BAD_SETTINGS = """
GOLDSKY_MAX_ATTEMPTS | 0 | GOLDSKY_MAX_ATTEMPTS must be at least 1; it is 0
GOLDSKY_TIMEOUT_SECONDS | abc | GOLDSKY_TIMEOUT_SECONDS='abc' is not a number
GOLDSKY_TIMEOUT_SECONDS | nan | GOLDSKY_TIMEOUT_SECONDS must be a number of seconds above 0
GOLDSKY_URL | api.goldsky.com/gn | GOLDSKY_URL must be an http:// or https:// URL with a host
GOLDSKY_URL | https://user:hunter2@:99999/x | GOLDSKY_URL must be an http:// or https:// URL with a host; it is <an unparseable URL>
GOLDSKY_RATE_LIMIT | ten | GOLDSKY_RATE_LIMIT='ten' is not an integer
GOLDSKY_RATE_LIMIT | 0 | GOLDSKY_RATE_LIMIT must be at least 1; it is 0
GOLDSKY_MAX_BODY_BYTES | 10 | GOLDSKY_MAX_BODY_BYTES must be 1024 to 2147483648 bytes
GOLDSKY_MAX_REASON_CHARS | 5 | GOLDSKY_MAX_REASON_CHARS must be 20 to 10000
GOLDSKY_MAX_NUMBER_DIGITS | 10 | GOLDSKY_MAX_NUMBER_DIGITS must be 34
GOLDSKY_MAX_DECIMAL_EXPONENT | 0 | GOLDSKY_MAX_DECIMAL_EXPONENT must be 1 to 4000
GOLDSKY_MAX_RETRY_AFTER_SECONDS | -1 | GOLDSKY_MAX_RETRY_AFTER_SECONDS must be a number of seconds, 0 or more
"""


@pytest.mark.parametrize(
    ("variable", "value", "message"), [line.split(" | ") for line in BAD_SETTINGS.strip().splitlines()]
)
def test_a_bad_setting_stops_the_load_naming_its_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError) as refused:
        build_defs()
    assert message in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.slow
def test_the_cli_reports_a_bad_setting_by_name():
    listed = dagster_asset_list(GOLDSKY_MAX_ATTEMPTS="0")
    assert listed.returncode != 0
    assert "GOLDSKY_MAX_ATTEMPTS must be at least 1; it is 0" in listed.stdout + listed.stderr


def test_a_resource_built_in_code_is_checked_when_it_makes_a_client():
    with pytest.raises(SettingError, match="GOLDSKY_MAX_ATTEMPTS must be at least 1; it is 0"):
        GoldskyResource(max_attempts=0).client()


def test_a_bad_chain_setting_names_its_variable_and_never_shows_the_key(monkeypatch):
    monkeypatch.setenv("POLYGON_RPC_URL", "polygon-mainnet.example/v2/SECRETKEY123456")
    with pytest.raises(SettingError, match="POLYGON_RPC_URL must be an http") as refused:
        build_defs()
    assert "SECRETKEY123456" not in str(refused.value)
    monkeypatch.setenv("POLYGON_RPC_URL", "https://polygon-mainnet.example/v2/SECRETKEY123456")
    monkeypatch.setenv("POLYGON_RPC_BATCH_SIZE", "0")
    with pytest.raises(SettingError, match="POLYGON_RPC_BATCH_SIZE must be at least 1"):
        build_defs()


@pytest.mark.parametrize("variable", ["PAYOUT_DATA_DIR", "PAYOUT_INPUT_IDS", "PAYOUT_SHARDS_DIR"])
def test_a_relative_path_is_refused_naming_its_variable(monkeypatch, variable: str):
    # A run in a container, or launched by the daemon, starts in another working directory.
    monkeypatch.setenv(variable, "data/somewhere")
    with pytest.raises(SettingError, match=f"{variable} must be an absolute path .*; it is 'data/somewhere'"):
        build_defs()


def test_the_data_directory_moves_every_path_default(monkeypatch, tmp_path):
    monkeypatch.setenv("PAYOUT_DATA_DIR", str(tmp_path))
    for name in ("CLICKHOUSE_URL", "PAYOUT_INPUT_IDS", "PAYOUT_SHARDS_DIR"):
        monkeypatch.delenv(name, raising=False)
    resources = make_resources()
    assert resources["clickhouse"].url == f"chdb://{tmp_path / 'chdb'}"
    assert resources["files"].input_ids_path == str(tmp_path / "condition_ids_missing_api.txt")
    assert resources["files"].shards_dir == str(tmp_path / "shards")
