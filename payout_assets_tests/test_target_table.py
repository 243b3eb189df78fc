"""ClickHouse Cloud and clusters (issue 15): the DDL each layout setting generates, and the shape
check on tables that `system.tables`/`system.columns` describe as each engine of the family.

chDB can create the plain and Replacing engines only; Cloud's and a cluster's engines are
checked on the metadata rows those servers show. The default layout runs end to end in the
rest of the suite.
"""

from datetime import datetime

import dagster as dg
import pytest

from payout_assets import settings
from payout_assets.definitions import make_resources
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.target_table import (
    TABLE,
    TABLE_COLUMNS,
    TableLayout,
    TableLayoutError,
    describe,
    distributed_differences,
    node_differences,
    shape_differences,
    system_table,
    table_differences,
)
from payout_assets.view import STAGING_VIEW, VIEW, publish, view_sql
from payout_assets_tests.support import CREATE_TABLE, backfill

DISTRIBUTED = "default.resolutions_external_ingest_all"
CLUSTER = TableLayout("main", "ReplicatedReplacingMergeTree")
CLUSTER_WITH_DISTRIBUTED = TableLayout("main", "ReplicatedReplacingMergeTree", DISTRIBUTED)
COLUMNS_SQL = ", ".join(f"{name} {kind}" for name, kind in TABLE_COLUMNS.items())


def test_the_default_layout_creates_one_replacing_table_and_reads_it():
    layout = TableLayout()
    assert layout.create_statements() == [
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({COLUMNS_SQL}) ENGINE = ReplacingMergeTree(version) ORDER BY condition_id"
    ]
    assert (layout.reads, layout.on_cluster, layout.insert_settings) == (TABLE, "", {})
    assert view_sql(STAGING_VIEW, False, layout).startswith(f"CREATE OR REPLACE VIEW {STAGING_VIEW} AS")
    assert f"FROM {TABLE} FINAL" in view_sql(STAGING_VIEW, True, layout)


def test_a_cluster_creates_a_replicated_table_on_every_node():
    assert CLUSTER.create_statements() == [
        f"CREATE TABLE IF NOT EXISTS {TABLE} ON CLUSTER `main` ({COLUMNS_SQL}) "
        "ENGINE = ReplicatedReplacingMergeTree(version) ORDER BY condition_id"
    ]
    assert CLUSTER.reads == TABLE
    assert view_sql(STAGING_VIEW, True, CLUSTER).startswith(f"CREATE OR REPLACE VIEW {STAGING_VIEW} ON CLUSTER `main` AS")


def test_a_distributed_table_is_created_sharded_by_id_and_everything_goes_through_it():
    local, distributed = CLUSTER_WITH_DISTRIBUTED.create_statements()
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS {TABLE} ON CLUSTER `main` (")
    assert distributed == (
        f"CREATE TABLE IF NOT EXISTS {DISTRIBUTED} ON CLUSTER `main` AS {TABLE} "
        "ENGINE = Distributed('main', 'default', 'resolutions_external_ingest', cityHash64(condition_id))"
    )
    assert CLUSTER_WITH_DISTRIBUTED.reads == DISTRIBUTED
    assert CLUSTER_WITH_DISTRIBUTED.insert_settings == {"distributed_foreground_insert": 1}
    sql = view_sql(STAGING_VIEW, True, CLUSTER_WITH_DISTRIBUTED)
    assert f"FROM {DISTRIBUTED} FINAL" in sql and f"FROM {TABLE} " not in sql


@pytest.mark.parametrize(
    "layout, message",
    [
        (dict(engine="MergeTree"), "CLICKHOUSE_TABLE_ENGINE='MergeTree' is not one of ReplacingMergeTree, ReplicatedReplacingMergeTree"),
        (dict(cluster="main` (x String) ENGINE = Log; --"), "is not a cluster name"),
        (dict(distributed_table=DISTRIBUTED), "CLICKHOUSE_DISTRIBUTED_TABLE needs CLICKHOUSE_CLUSTER"),
        (dict(cluster="main", distributed_table="all_payouts"), "is not a database.table name"),
        (dict(cluster="main", distributed_table=TABLE), "is not a database.table name other than"),
    ],
)
def test_contradicting_or_unsafe_layout_settings_are_refused_naming_the_variable(layout: dict, message: str):
    with pytest.raises(TableLayoutError, match=message.replace("(", r"\(")):
        TableLayout(**layout)


def test_a_run_with_refused_layout_settings_fails_before_its_first_step(resources: dict):
    resources["clickhouse"] = ClickHouseResource(url=resources["clickhouse"].url, table_engine="MergeTree")
    result = backfill(resources)
    assert not result.success
    assert not [event for event in result.all_events if event.event_type_value == "STEP_START"]
    [failure] = [event for event in result.all_events if event.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert "CLICKHOUSE_TABLE_ENGINE='MergeTree' is not one of" in failure.event_specific_data.error.message


def test_the_settings_choose_the_layout(monkeypatch):
    monkeypatch.setenv("CLICKHOUSE_CLUSTER", "main")
    monkeypatch.setenv("CLICKHOUSE_TABLE_ENGINE", "ReplicatedReplacingMergeTree")
    monkeypatch.setenv("CLICKHOUSE_DISTRIBUTED_TABLE", DISTRIBUTED)
    clickhouse = make_resources()["clickhouse"]
    assert isinstance(clickhouse.cluster, dg.EnvVar)  # the UI shows the variable, resolved at run time
    environ = {"CLICKHOUSE_CLUSTER": "main", "CLICKHOUSE_TABLE_ENGINE": "ReplicatedReplacingMergeTree", "CLICKHOUSE_DISTRIBUTED_TABLE": DISTRIBUTED}
    resolved = make_resources(lambda name: settings.value(name, environ))["clickhouse"]  # as the scripts build it
    assert resolved.layout == CLUSTER_WITH_DISTRIBUTED


# What system.tables shows for our table on ClickHouse Cloud and on a cluster.
CLOUD_ENGINE = ("SharedReplacingMergeTree", "SharedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) "
                "ORDER BY condition_id SETTINGS index_granularity = 8192")
CLUSTER_ENGINE = ("ReplicatedReplacingMergeTree", "ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) "
                  "ORDER BY condition_id SETTINGS index_granularity = 8192")


@pytest.mark.parametrize("engine, engine_full", [CLOUD_ENGINE, CLUSTER_ENGINE])
def test_cloud_and_cluster_engines_of_our_shape_pass(engine: str, engine_full: str):
    assert table_differences(dict(TABLE_COLUMNS), engine, engine_full, "condition_id") == []


@pytest.mark.parametrize("engine, engine_full", [CLOUD_ENGINE, CLUSTER_ENGINE])
def test_cloud_and_cluster_engines_with_another_version_or_sort_key_are_named(engine: str, engine_full: str):
    other_version = engine_full.replace("'{replica}', version)", "'{replica}', fetched_at)")
    assert table_differences(dict(TABLE_COLUMNS), engine, other_version, "condition_id") == [
        f"engine {engine} has version column fetched_at, expected ReplacingMergeTree(version) or its Shared/Replicated variant"
    ]
    no_version = engine_full.replace(", version)", ")")
    assert "has version column none" in table_differences(dict(TABLE_COLUMNS), engine, no_version, "condition_id")[0]
    assert table_differences(dict(TABLE_COLUMNS), engine, engine_full, "condition_id, version") == [
        "sort key is (condition_id, version), expected (condition_id)"
    ]


@pytest.mark.parametrize("engine", ["SharedMergeTree", "ReplicatedMergeTree", "ReplicatedSummingMergeTree", "SharedReplacingMergeTreeX"])
def test_engines_outside_the_replacing_family_are_named(engine: str):
    [difference] = table_differences(dict(TABLE_COLUMNS), engine, f"{engine}('/p', '{{replica}}') ORDER BY condition_id", "condition_id")
    assert difference.startswith(f"engine is {engine}, expected")


def distributed_row(arguments: str) -> tuple[str, str]:
    return "Distributed", f"Distributed({arguments})"


def test_a_distributed_table_over_our_table_sharded_by_id_passes():
    engine, engine_full = distributed_row("'main', 'default', 'resolutions_external_ingest', cityHash64(condition_id)")
    assert distributed_differences(CLUSTER_WITH_DISTRIBUTED, dict(TABLE_COLUMNS), engine, engine_full) == []


@pytest.mark.parametrize(
    "arguments, difference",
    [
        ("'main', 'default', 'resolutions_external_ingest', rand()", "has sharding key rand(), expected a function of condition_id alone"),
        ("'main', 'default', 'resolutions_external_ingest'", "has sharding key none"),
        ("'main', 'default', 'resolutions_external_ingest', cityHash64(condition_id, version)", "has sharding key cityHash64(condition_id, version)"),
        ("'other', 'default', 'resolutions_external_ingest', cityHash64(condition_id)", "on cluster other, expected default.resolutions_external_ingest on cluster main"),
        ("'main', 'default', 'payouts_local', cityHash64(condition_id)", "reads default.payouts_local on cluster main"),
    ],
)
def test_a_distributed_table_that_could_split_an_id_or_reads_another_table_is_named(arguments: str, difference: str):
    engine, engine_full = distributed_row(arguments)
    [found] = distributed_differences(CLUSTER_WITH_DISTRIBUTED, dict(TABLE_COLUMNS), engine, engine_full)
    assert found.startswith(DISTRIBUTED) and difference in found


def test_a_distributed_table_with_other_columns_is_named():
    engine, engine_full = distributed_row("'main', 'default', 'resolutions_external_ingest', cityHash64(condition_id)")
    columns = {**TABLE_COLUMNS, "version": "UInt8"}
    assert distributed_differences(CLUSTER_WITH_DISTRIBUTED, columns, engine, engine_full) == [
        f"{DISTRIBUTED}: column version is UInt8, expected UInt64"
    ]


def test_the_shape_check_reads_real_system_tables(resources: dict):
    """chDB's own metadata rows: our table passes; a user's MergeTree where the Distributed table should be is named."""
    with resources["clickhouse"].get_client() as client:
        assert shape_differences(client, TableLayout()) == []  # nothing exists yet: the load creates it
        client.command(CREATE_TABLE)
        assert shape_differences(client, TableLayout()) == []
        client.command(f"CREATE TABLE {DISTRIBUTED} AS {TABLE} ENGINE = MergeTree ORDER BY condition_id")
        # chDB has no cluster to ask, so its own rows stand for one node's.
        rows = {"ch-1": describe(client, DISTRIBUTED, TableLayout())[""]}
        assert node_differences(CLUSTER_WITH_DISTRIBUTED, {}, rows) == [f"on ch-1: {DISTRIBUTED} has engine MergeTree, expected Distributed"]


def test_a_cluster_asks_every_replica_for_its_own_tables():
    assert system_table("tables", CLUSTER) == "clusterAllReplicas('main', system.tables)"
    assert system_table("columns", TableLayout()) == "system.columns"


def test_one_replica_with_a_table_of_another_shape_is_named_by_host():
    ours = (dict(TABLE_COLUMNS), *CLUSTER_ENGINE, "condition_id")
    users = (dict(TABLE_COLUMNS), "ReplicatedMergeTree", "ReplicatedMergeTree('/p', '{replica}') ORDER BY condition_id", "condition_id")
    distributed = (dict(TABLE_COLUMNS), *distributed_row("'main', 'default', 'resolutions_external_ingest', cityHash64(condition_id)"), "")
    assert node_differences(CLUSTER_WITH_DISTRIBUTED, {"ch-1": ours, "ch-2": ours}, {"ch-1": distributed, "ch-2": distributed}) == []
    [difference] = node_differences(CLUSTER_WITH_DISTRIBUTED, {"ch-1": ours, "ch-2": users}, {"ch-1": distributed})
    assert difference.startswith("on ch-2: engine is ReplicatedMergeTree, expected")


class ClusterOfOne:
    """A chDB client standing in for every node of the cluster `main`, which cannot run here:
    each statement is recorded, then run without its ON CLUSTER clause."""

    def __init__(self, client) -> None:
        self.client, self.statements = client, []

    def command(self, sql: str, *args, **kwargs):
        self.statements.append(sql)
        return self.client.command(sql.replace(CLUSTER.on_cluster, ""), *args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.client, name)


def test_the_view_is_created_swapped_and_dropped_on_every_node_of_the_cluster(resources: dict):
    rows = [["a" * 64, [1, 0], 1, 0, datetime(2024, 5, 1), "goldsky-api", "subgraph", datetime(2024, 5, 2), 1, 1],
            ["b" * 64, [1, 1], 2, 0, datetime(2024, 5, 1), "goldsky-api", "subgraph", datetime(2024, 5, 2), 1, 1]]
    with resources["clickhouse"].get_client() as client:
        client.command(CREATE_TABLE)
        client.insert(TABLE, rows, column_names=list(TABLE_COLUMNS))
        cluster = ClusterOfOne(client)
        first, second = publish(cluster, False, CLUSTER), publish(cluster, False, CLUSTER)  # renamed in, then exchanged
        assert first.problems == second.problems == [] and second.rows == 2
        ddl = [sql for sql in cluster.statements if sql.split()[0] in ("CREATE", "DROP", "EXCHANGE", "RENAME")]
        assert {sql.split()[0] for sql in ddl} == {"CREATE", "DROP", "EXCHANGE", "RENAME"}
        assert all(CLUSTER.on_cluster in sql for sql in ddl), [sql for sql in ddl if CLUSTER.on_cluster not in sql]
        assert client.query(f"SELECT count() FROM {VIEW}").result_rows == [(2,)]
