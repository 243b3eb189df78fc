"""The truth view is inspected under a staging name and published only when it is right (issue 11)."""

from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import pytest

from payout_assets.view import EXISTING, STAGING_VIEW, VIEW
from payout_assets_tests.support import Truth, backfill, build_view, check_results, failed_checks, make_resources, make_truth, query
from scripts.demo_data import EXISTING_COLUMNS, EXISTING_TABLE_DDL
from subgraph_replica import ReplicaServer

F = "f" * 64  # a condition only the users' table knows


@pytest.fixture(scope="module")
def truth() -> Truth:
    return make_truth(200, seed=11)


@pytest.fixture(scope="module")
def backfilled(truth: Truth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One backfill for the module: these tests only read the target table."""
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path_factory.mktemp("view"), replica.url, truth.ids)
        assert backfill(resources).success
        yield resources


@pytest.fixture
def resources(backfilled: dict) -> Iterator[dict]:
    """The module's backfill; what a test adds beside the target table (the users' table, the
    views, their database) is dropped after it."""
    yield backfilled
    with backfilled["clickhouse"].get_client() as client:
        client.command(f"DROP TABLE IF EXISTS {EXISTING}")
        client.command(f"DROP DATABASE IF EXISTS {VIEW.split('.')[0]}")


def existing_table(resources: dict, rows: list[list], **column_types: str) -> None:
    """`market_resolutions_final` as the users have it, with some columns' types or the sort key changed."""
    ddl = EXISTING_TABLE_DDL.replace("IF NOT EXISTS ", "")
    for old, new in column_types.items():
        ddl = ddl.replace(old, new)
    with resources["clickhouse"].get_client() as client:
        client.command(ddl)
        client.insert(EXISTING, rows, column_names=EXISTING_COLUMNS)


def row(condition_id: str, numerators: list, denominator, source: str = "polymarket-api", updated: int = 2) -> list:
    return [condition_id, "", 0, numerators, denominator, len(numerators), datetime(2024, 1, 1), datetime(2024, 1, updated), source, 1]


def view_rows(resources: dict) -> dict[str, tuple]:
    rows = query(resources, f"SELECT condition_id, payout_numerators, payout_denominator, resolution_source FROM {VIEW}")
    assert len(rows) == len({r[0] for r in rows}), "one row per condition"
    return {r[0]: r[1:] for r in rows}


def view_failure(result: dg.ExecuteInProcessResult) -> tuple[str, dict]:
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    return data.error.message, {k: v.value for k, v in data.user_failure_data.metadata.items()}


def by_vector(truth: Truth) -> dict[tuple, list[str]]:
    groups: dict[tuple, list[str]] = {}
    for cid, (numerators, denominator) in sorted(truth.resolved().items()):
        groups.setdefault((tuple(numerators), denominator), []).append(cid)
    return groups


def test_duplicates_and_contradictions_stop_the_swap_and_keep_the_published_view(resources: dict, truth: Truth):
    assert build_view(resources).success  # published without the users' table
    published = view_rows(resources)
    wins = by_vector(truth)[((1, 0), 1)]
    # Sorted by more than the id, FINAL keeps both rows of an id.
    existing_table(
        resources,
        [row(wins[0], [0, 1], 1, updated=2), row(wins[0], [1, 0], 1, updated=3), row(F, [1, 0], 1, updated=2), row(F, [1, 0], 1, updated=3)],
        **{"ORDER BY condition_id_norm": "ORDER BY (condition_id_norm, updated_at)"},
    )
    result = build_view(resources)
    assert not result.success
    message, metadata = view_failure(result)
    assert "2 condition ids appear more than once, 1 of them with different payouts" in message
    assert metadata["repeated_ids"] == [wins[0], F] and metadata["contradicting_ids"] == [wins[0]]
    assert view_rows(resources) == published  # the old definition, still without the users' rows
    assert query(resources, f"EXISTS TABLE {STAGING_VIEW}") == [(0,)]


def test_prefixed_upper_case_and_padded_ids_are_one_condition(resources: dict, truth: Truth):
    wins, loses = by_vector(truth)[((1, 0), 1)], by_vector(truth)[((0, 1), 1)]
    # FixedString(66) holds a `0x`-prefixed id; a 64-digit id in it is padded with NULs.
    existing_table(
        resources,
        [row("0x" + wins[0].upper(), [0, 1], 1), row(loses[0], [0, 1], 1)],
        **{"condition_id_norm FixedString(64)": "condition_id_norm FixedString(66)"},
    )
    result = build_view(resources)
    assert result.success
    view = view_rows(resources)
    assert view[wins[0]] == ([0, 1], 1, "polymarket-api") and view[loses[0]] == ([0, 1], 1, "polymarket-api")
    assert len(view) == len(truth.resolved())
    assert failed_checks(result) == {"agreement_with_existing": "WARN"}
    agreement = check_results(result)["agreement_with_existing"].metadata
    assert agreement["compared"].value == 2
    assert [d.split(":")[0] for d in agreement["first_disagreements"].value] == [wins[0]]


def test_the_same_id_prefixed_and_not_with_opposite_payouts_is_a_contradiction(resources: dict, truth: Truth):
    wins = by_vector(truth)[((1, 0), 1)]
    existing_table(resources, [row("0x" + wins[0], [0, 1], 1), row(wins[0], [1, 0], 1)], **{"FixedString(64)": "String"})
    result = build_view(resources)
    assert not result.success
    assert view_failure(result)[1]["contradicting_ids"] == [wins[0]]
    assert query(resources, f"EXISTS TABLE {VIEW}") == [(0,)]  # never published


def test_fractional_payouts_are_kept_and_compared_exactly(resources: dict, truth: Truth):
    groups = by_vector(truth)
    wins, half = groups[((1, 0), 1)], groups.get(((1, 1), 2), [])
    rows = [row(wins[0], [0.5, 0.5], 1.0), row(wins[1], [1.0, 0.0], 1.0), row(F, [0.25, 0.75], 1.0)]
    rows += [row(cid, [0.5, 0.5], 1.0) for cid in half]  # [1,1]/2 in Goldsky: the same payout
    existing_table(resources, rows, **{"Array(UInt8)": "Array(Float64)", "payout_denominator UInt8": "payout_denominator Float64"})
    result = build_view(resources)
    assert result.success
    view = view_rows(resources)
    assert view[wins[0]] == ([0.5, 0.5], 1.0, "polymarket-api")  # not truncated to [0,0] and replaced
    assert view[F] == ([0.25, 0.75], 1.0, "polymarket-api")
    agreement = check_results(result)["agreement_with_existing"].metadata
    assert agreement["compared"].value == 2 + len(half)
    assert [d.split(":")[0] for d in agreement["first_disagreements"].value] == [wins[0]]


def test_existing_rows_that_say_goldsky_api_are_counted_as_existing(resources: dict, truth: Truth):
    wins = by_vector(truth)[((1, 0), 1)]
    existing_table(resources, [row(wins[0], [1, 0], 1, source="goldsky-api"), row(F, [1, 0], 1, source="goldsky-api")])
    result = build_view(resources)
    assert result.success and not failed_checks(result)
    metadata = result.asset_materializations_for_node("vw_resolutions_truth")[0].metadata
    assert (metadata["existing_rows"].value, metadata["goldsky_rows"].value) == (2, len(truth.resolved()) - 1)
    readiness = check_results(result)["integration_readiness"].metadata
    assert (readiness["existing_rows"].value, readiness["goldsky_rows"].value) == (2, len(truth.resolved()) - 1)


def test_a_users_table_named_like_the_view_is_left_as_it_is(resources: dict, truth: Truth):
    with resources["clickhouse"].get_client() as client:
        client.command("CREATE DATABASE cascadian_clean")
        client.command(f"CREATE TABLE {VIEW} (condition_id String) ENGINE = MergeTree ORDER BY condition_id")
        client.command(f"INSERT INTO {VIEW} VALUES ('{F}')")
    result = build_view(resources)
    assert not result.success
    assert f"{VIEW} is a MergeTree table, not a view; it was left as it is" in view_failure(result)[0]
    assert query(resources, f"SELECT * FROM {VIEW}") == [(F,)]
