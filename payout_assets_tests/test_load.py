"""The load writes only into a table of exactly its shape, and never alters a user's table (issue 11)."""

from datetime import datetime, timezone

import dagster as dg
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payout_assets.core.statuses import to_frame
from payout_assets.core.subgraph import PayoutShape, SubgraphInfo
from payout_assets.load import rows_to_load
from payout_assets.target_table import TABLE, TABLE_COLUMNS, replacing_version
from payout_assets_tests.support import CREATE_TABLE, Truth, backfill, check_results, failed_checks, fetch_only, load_only, materialized, query

# The table a user made by hand before the first run: the seed's names, other types and no sort key.
USER_TABLE = (
    f"CREATE TABLE {TABLE} (condition_id String, payout_numerators Array(UInt32), payout_denominator UInt32, "
    "winning_index Int32, resolved_at Date, source LowCardinality(String), resolved_at_source LowCardinality(String), "
    "fetched_at DateTime, block_number UInt64, version UInt8) ENGINE = ReplacingMergeTree(version) ORDER BY tuple()"
)
USER_ROW = ("f" * 64, [1, 0], 1, 0, "2024-05-01", "by-hand", "manual", "2024-05-01 00:00:00", 0, 7)


def create(resources: dict, ddl: str, rows: list[tuple] = ()) -> str:
    with resources["clickhouse"].get_client() as client:
        client.command(ddl)
        if rows:
            client.command(f"INSERT INTO {TABLE} VALUES " + ", ".join(map(repr, rows)))
        return client.command(f"SHOW CREATE TABLE {TABLE}")


def step_failure(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.error.message


def test_the_recovery_command_refuses_a_wrong_shaped_table_and_leaves_it_as_it_was(resources: dict, truth: Truth):
    fetched = fetch_only(resources)
    assert fetched.success
    before = create(resources, USER_TABLE, [USER_ROW])  # made after the pre-flight checks passed
    # The README's command after a ClickHouse outage: only the load, no pre-flight check.
    result = load_only(resources)
    assert not result.success
    message = step_failure(result)
    assert "resolved_at is Date, expected DateTime" in message
    assert "version is UInt8, expected UInt64" in message
    assert "sort key is (tuple()), expected (condition_id)" in message
    assert "nothing was inserted" in message
    assert query(resources, f"SELECT condition_id, source, version FROM {TABLE}") == [("f" * 64, "by-hand", 7)]
    with resources["clickhouse"].get_client() as client:
        assert client.command(f"SHOW CREATE TABLE {TABLE}") == before


def test_a_plain_merge_tree_target_is_named_by_the_preflight_check_and_refused_by_the_load(resources: dict):
    plain = CREATE_TABLE.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE").replace("ReplacingMergeTree(version)", "MergeTree")
    create(resources, plain)
    result = backfill(resources)
    assert failed_checks(result) == {"clickhouse_ready": "ERROR"}  # named, not ILLEGAL_FINAL
    problem = check_results(result)["clickhouse_ready"].metadata["problem"].value
    assert problem == "engine is MergeTree, expected ReplacingMergeTree(version) or its Shared/Replicated variant"
    assert not load_only(resources).success
    assert query(resources, f"SELECT count() FROM {TABLE}") == [(0,)]


@pytest.mark.parametrize(
    "engine, sort_key, difference",
    [
        ("ReplacingMergeTree", "condition_id", "engine ReplacingMergeTree has version column none"),
        ("ReplacingMergeTree(fetched_at)", "condition_id", "engine ReplacingMergeTree has version column fetched_at"),
        ("ReplacingMergeTree(version)", "(condition_id, version)", "sort key is (condition_id, version), expected (condition_id)"),
        ("SummingMergeTree", "condition_id", "engine is SummingMergeTree"),
    ],
)
def test_every_engine_sort_key_and_version_difference_is_named(resources: dict, engine: str, sort_key: str, difference: str):
    create(resources, CREATE_TABLE.replace("ReplacingMergeTree(version) ORDER BY condition_id", f"{engine} ORDER BY {sort_key}"))
    result = load_only(resources)
    assert difference in step_failure(result)


def test_extra_and_missing_columns_are_named(resources: dict):
    columns = {**TABLE_COLUMNS, "note": "String"}
    del columns["block_number"]
    ddl = f"CREATE TABLE {TABLE} (" + ", ".join(f"{n} {k}" for n, k in columns.items()) + ") ENGINE = ReplacingMergeTree(version) ORDER BY condition_id"
    create(resources, ddl)
    message = step_failure(load_only(resources))
    assert "column block_number (UInt64) is missing" in message and "column note (String) is not one of ours" in message


@pytest.mark.parametrize(
    "engine_full, version",
    [
        ("ReplacingMergeTree(version) ORDER BY condition_id SETTINGS index_granularity = 8192", "version"),
        ("SharedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', version) ORDER BY condition_id", "version"),
        ("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/t', '{replica}', version) ORDER BY condition_id", "version"),
        ("ReplicatedReplacingMergeTree(version) ORDER BY condition_id", "version"),
        ("ReplicatedReplacingMergeTree('/p/a,b(c)\\'d', '{replica}', version) ORDER BY condition_id", "version"),
        ("ReplicatedReplacingMergeTree('/p/a,b(c)', '{replica}') ORDER BY condition_id", None),
        ("ReplacingMergeTree ORDER BY condition_id", None),
    ],
)
def test_the_whole_replacing_family_is_read_for_its_version_column(engine_full: str, version: str | None):
    # ClickHouse Cloud and clusters cannot run here; their engine_full text is what system.tables shows.
    assert replacing_version(engine_full) == version


def test_a_table_of_our_shape_made_beforehand_is_loaded(resources: dict, truth: Truth):
    create(resources, CREATE_TABLE)
    assert backfill(resources).success
    assert query(resources, f"SELECT count() FROM {TABLE} FINAL") == [(len(truth.resolved()),)]


def quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@given(st.text(), st.text(), st.sampled_from(["Replicated", "Shared"]))
def test_any_zookeeper_path_and_replica_name_leave_the_version_column_found(path: str, replica: str, variant: str):
    engine_full = f"{variant}ReplacingMergeTree({quoted(path)}, {quoted(replica)}, version) ORDER BY condition_id"
    assert replacing_version(engine_full) == "version"


@given(st.text())
def test_any_engine_text_is_read_without_crashing(engine_full: str):
    assert replacing_version(engine_full) is None or isinstance(replacing_version(engine_full), str)


def test_a_shard_bigger_than_one_insert_is_loaded_in_chunks_and_once(resources: dict, truth: Truth, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("payout_assets.load.INSERT_ROWS", 50)  # ~140 resolved rows a shard: three inserts each
    assert backfill(resources).success
    expected = [(len(truth.resolved()), len(truth.resolved()))]
    assert query(resources, f"SELECT count(), uniqExact(condition_id) FROM {TABLE}") == expected
    assert load_only(resources).success  # a re-run inserts nothing
    assert query(resources, f"SELECT count() FROM {TABLE}") == [(len(truth.resolved()),)]


@pytest.mark.parametrize("group_rows", [1, 10**6], ids=["a shard at a time", "the range at once"])
def test_shards_are_loaded_alone_or_together_with_the_same_rows(resources: dict, truth: Truth, monkeypatch: pytest.MonkeyPatch, group_rows: int):
    monkeypatch.setattr("payout_assets.load.LOAD_GROUP_ROWS", group_rows)
    result = backfill(resources, "3", "9")
    assert result.success
    expected = {cid for cid in truth.resolved() if "3" <= cid[0] <= "9"}
    assert {row[0] for row in query(resources, f"SELECT condition_id FROM {TABLE}")} == expected
    load = materialized(result, "resolutions_external_ingest")
    assert load.metadata["rows_inserted"].value == load.metadata["rows_in_selected_shards"].value == len(expected)


def test_a_resolved_row_is_loaded_unless_the_table_holds_its_version_and_an_unresolved_one_never():
    """A re-run inserts nothing; a fresher fetch of an id (a later version) replaces the row."""
    fetched = datetime(2026, 11, 2, tzinfo=timezone.utc)
    resolved = {"status": "resolved", "payout_numerators": [1, 0], "payout_denominator": 1, "winning_index": 0,
                "resolved_at": fetched, "resolved_at_source": "subgraph", "fetched_at": fetched, "block_number": 1}
    statuses = to_frame(
        [{**resolved, "condition_id": "a" * 64}, {"condition_id": "b" * 64, "status": "unresolved", "fetched_at": fetched}],
        SubgraphInfo("endpoint", PayoutShape("numerators", False), 1, None, False, False),
    )
    version = int(fetched.timestamp() * 1_000_000)

    def loaded(versions: list[int]) -> pl.DataFrame:
        table = pl.DataFrame({"condition_id": ["a" * 64] * len(versions), "version": versions}, schema={"condition_id": pl.String, "version": pl.UInt64})
        return rows_to_load(statuses, table)

    assert loaded([])[["condition_id", "version"]].rows() == [("a" * 64, version)]
    assert loaded([version]).height == 0  # the table holds it: a re-run inserts nothing
    assert loaded([version - 1])[["condition_id", "version"]].rows() == [("a" * 64, version)]  # an older version: replaced
