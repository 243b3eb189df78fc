"""The code location loads, with the asset keys, partitions and policies DESIGN.md fixes."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from payout_assets import defs
from payout_assets.definitions import build_defs, make_resources
from payout_assets.settings import SettingError
from payout_assets.partitions import SHARDS

PARTITIONED = ["missing_condition_ids", "goldsky_payouts", "resolutions_external_ingest"]


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
    assert len(checks) == 15
    assert checks["goldsky_ready"] == "missing_condition_ids"
    assert checks["integration_readiness"] == "vw_resolutions_truth"
    preflight = next(c for c in defs.asset_checks if "goldsky_ready" in {k.name for k in c.check_keys})
    assert all(spec.blocking for spec in preflight.check_specs)


def test_sensor_is_off_by_default():
    sensor = defs.resolve_sensor_def("new_and_unresolved_payouts")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.description


def test_secrets_from_the_environment_stay_env_vars(monkeypatch):
    monkeypatch.setenv("GOLDSKY_API_KEY", "key-from-env")
    monkeypatch.setenv("CLICKHOUSE_URL", "http://default:pw-from-env@127.0.0.1:8123/default")
    resources = make_resources()
    assert isinstance(resources["goldsky"].api_key, dg.EnvVar)
    assert isinstance(resources["clickhouse"].url, dg.EnvVar)


def test_a_setting_that_is_not_a_number_names_its_variable(monkeypatch):
    monkeypatch.setenv("PAYOUT_SENSOR_INTERVAL_SECONDS", "daily")
    with pytest.raises(SettingError, match="PAYOUT_SENSOR_INTERVAL_SECONDS='daily' is not an integer"):
        build_defs()


def test_the_sensor_schedule_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv("PAYOUT_SENSOR_INTERVAL_SECONDS", "3600")
    monkeypatch.setenv("PAYOUT_RECHECK_HOURS", "6")
    sensor = build_defs().resolve_sensor_def("new_and_unresolved_payouts")
    assert sensor.minimum_interval_seconds == 3600
    assert "6 h after their last check" in sensor.description


def test_the_cli_loads_the_code_location_by_module_name():
    listed = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "dagster"), "asset", "list", "-m", "payout_assets"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(listed.stdout.split()) == {*PARTITIONED, "vw_resolutions_truth"}
