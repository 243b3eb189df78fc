"""CLICKHOUSE_URL must say which ClickHouse it means (issue 11)."""

import socket
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from payout_assets.resources.clickhouse import ACCEPTED_FORMS, ClickHouseResource, ClickHouseUrlRefused
from payout_assets_tests.support import Truth, backfill


@pytest.fixture
def local_server_port() -> Iterator[socket.socket | None]:
    """A listener where a developer's own ClickHouse would be, if the port is free here."""
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 8123))
    except OSError:
        listener.close()
        yield None
        return
    listener.listen()
    listener.setblocking(False)
    yield listener
    listener.close()


def test_a_url_without_scheme_is_refused_before_any_step(
    resources: dict, truth: Truth, monkeypatch: pytest.MonkeyPatch, local_server_port: socket.socket | None
):
    monkeypatch.setenv("CLICKHOUSE_URL", "data/chdb")
    resources["clickhouse"] = ClickHouseResource(url=dg.EnvVar("CLICKHOUSE_URL"))
    result = backfill(resources)
    assert not result.success
    assert not result.get_asset_materialization_events()
    [failure] = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert "CLICKHOUSE_URL 'data/chdb' has no accepted scheme" in failure and ACCEPTED_FORMS in failure
    if local_server_port is not None:  # nothing went to localhost:8123
        with pytest.raises(BlockingIOError):
            local_server_port.accept()


@pytest.mark.parametrize("url", ["data/chdb", "/abs/chdb", "localhost:8123", "CHDB:///x", "tcp://host:9000", "user:hunter2@host:8123/db"])
def test_every_form_but_the_accepted_ones_is_refused_without_showing_a_password(tmp_path: Path, url: str):
    with pytest.raises(ClickHouseUrlRefused) as refused:
        with ClickHouseResource(url=url).get_client():
            pass
    assert ACCEPTED_FORMS in str(refused.value) and "hunter2" not in str(refused.value)
    assert not (tmp_path / "data").exists()


def test_a_relative_chdb_directory_is_refused():
    # Each run would open the directory under its own working directory.
    with pytest.raises(ClickHouseUrlRefused, match="'chdb://data/chdb' names a relative chDB directory"):
        with ClickHouseResource(url="chdb://data/chdb").get_client():
            pass
