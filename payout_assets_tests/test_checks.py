"""Every check passes on clean data and fails, with the right severity and offenders, on bad data."""

import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payout_assets.checks import fetch_checks, preflight, table_checks, view_checks
from payout_assets.core.condition_ids import BLOCK_LINES
from payout_assets.core.id_digests import id_digests
from payout_assets.core.statuses import to_frame
from payout_assets.input_ids import missing_condition_ids
from payout_assets.metadata import MAX_LISTED
from payout_assets.target_table import TABLE, TABLE_COLUMNS, TableLayout
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.resources.rate_limiter import SlidingWindowLimiter
from payout_assets.view import VIEW, view_sql
from payout_assets_tests.support import (
    BACKFILL_COMMAND,
    CREATE_TABLE,
    backfill,
    check_results,
    failed_checks,
    log_messages,
    make_resources,
    make_truth,
    random_ids,
)
from payout_assets_tests.support.processes import free_port
from subgraph_replica import FaultMix, ReplicaServer

NOW = datetime.now(timezone.utc).replace(microsecond=0)
A, B, C = "a" * 64, "b" * 64, "c" * 64


def table_row(cid: str, nums: list[int], den: int, winning: int | None = None, resolved_at: datetime = datetime(2024, 5, 1)) -> list:
    winning = nums.index(max(nums)) if winning is None else winning
    return [cid, nums, den, winning, resolved_at, "goldsky-api", "subgraph", datetime(2024, 5, 2), 1, 1]


@pytest.fixture
def clickhouse(tmp_path: Path) -> ClickHouseResource:
    return ClickHouseResource(url=f"chdb://{tmp_path / 'chdb'}")


def load_rows(clickhouse: ClickHouseResource, rows: list[list], create: str = CREATE_TABLE) -> None:
    with clickhouse.get_client() as client:
        client.command(create)
        client.insert(TABLE, rows, column_names=list(TABLE_COLUMNS))


def run(name: str, clickhouse: ClickHouseResource, files: PayoutFiles | None = None, wrap=lambda client: client) -> dg.AssetCheckResult:
    """The table check `name` over the whole table, as a run that loads no shard reads it."""
    files = files or PayoutFiles(input_ids_path="none", shards_dir=str(clickhouse.embedded_directory.parent / "no-shards"))
    with clickhouse.get_client() as client:
        results = table_checks.TableChecks(files, TABLE).results(wrap(client))
    return next(result for result in results if result.check_name == name)


CLEAN = [table_row(A, [1, 0], 1), table_row(B, [0, 1], 1), table_row(C, [1, 1], 2)]


@pytest.mark.parametrize("check", ["payout_sums", "winning_index", "resolved_dates", "unique_condition_ids", "payout_shape"])
def test_table_checks_pass_on_clean_rows(clickhouse, check):
    load_rows(clickhouse, CLEAN)
    assert run(check, clickhouse).passed


def test_payout_sums_names_a_row_whose_numerators_miss_the_denominator(clickhouse):
    load_rows(clickhouse, CLEAN + [table_row("d" * 64, [1, 0], 2)])
    result = run("payout_sums", clickhouse)
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["bad_rows"].value == 1
    assert result.metadata["first_bad_ids"].value == ["d" * 64]


def test_payout_sums_names_a_row_whose_denominator_is_zero_though_its_numerators_sum_to_it(clickhouse):
    load_rows(clickhouse, CLEAN + [table_row("e" * 64, [0, 0], 0)])
    result = run("payout_sums", clickhouse)
    assert not result.passed and result.metadata["bad_rows"].value == 1
    assert result.metadata["first_bad_ids"].value == ["e" * 64]


def test_winning_index_out_of_range(clickhouse):
    load_rows(clickhouse, CLEAN + [table_row("d" * 64, [0, 1], 1, winning=2), table_row("e" * 64, [0, 1], 1, winning=0)])
    result = run("winning_index", clickhouse)
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["bad_rows"].value == 2


def test_resolved_dates_in_the_future_or_before_2020(clickhouse):
    future = (NOW + timedelta(days=2)).replace(tzinfo=None)
    load_rows(clickhouse, CLEAN + [table_row("d" * 64, [1, 0], 1, resolved_at=future), table_row("e" * 64, [1, 0], 1, resolved_at=datetime(2019, 1, 1))])
    result = run("resolved_dates", clickhouse)
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["bad_rows"].value == 2
    assert {row.split("'")[1] for row in result.metadata["first_bad_rows"].value} == {"d" * 64, "e" * 64}
    assert result.metadata["from_subgraph"].value == 5


def test_id_ranges_cut_a_group_of_shards_into_ranges_of_about_group_rows_without_gap_or_overlap():
    every = list(table_checks.SHARDS)
    assert table_checks.id_ranges(every, 0) == table_checks.id_ranges(every, table_checks.GROUP_ROWS) == [{"low": "0", "high": "g"}]
    ranges = table_checks.id_ranges(every, 146 * table_checks.GROUP_ROWS)
    assert len(ranges) == 146 and ranges[0]["low"] == "0" and ranges[-1]["high"] == "g"
    assert all(one["high"] == following["low"] for one, following in zip(ranges, ranges[1:]))  # no gap, no overlap
    assert all(one["low"] < one["high"] for one in ranges)
    assert table_checks.id_ranges(["3", "4"], 3 * table_checks.GROUP_ROWS) == [
        {"low": "3", "high": "3aaa"}, {"low": "3aaa", "high": "4555"}, {"low": "4555", "high": "5"}]
    assert len(table_checks.id_ranges(["f"], 10**9)) == 16**3  # at most one range a 4-digit prefix


@pytest.fixture(params=["one range", "a range a row"])
def group_rows(request, monkeypatch):
    """The uniqueness checks group by id range by range: with one, and with many ranges."""
    if request.param == "a range a row":
        monkeypatch.setattr(table_checks, "GROUP_ROWS", 1)


def test_duplicate_and_malformed_ids(clickhouse, group_rows):
    # A table created by hand with another sorting key keeps duplicates even under FINAL.
    other_key = CREATE_TABLE.replace("ORDER BY condition_id", "ORDER BY (condition_id, payout_denominator)")
    load_rows(clickhouse, CLEAN + [table_row(A, [2, 0], 2), table_row("0x" + B[2:], [0, 1], 1)], create=other_key)
    result = run("unique_condition_ids", clickhouse)
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["duplicated_ids"].value == [A]
    assert result.metadata["malformed_ids"].value == ["0x" + B[2:]]


def test_versions_of_one_id_that_disagree_on_the_payout_are_named(clickhouse, group_rows):
    # Under FINAL the table shows one row per id by construction: only the stored versions tell.
    load_rows(clickhouse, [])
    with clickhouse.get_client() as client:
        client.command(f"SYSTEM STOP MERGES {TABLE}")  # as right after a run, before a background merge
    load_rows(clickhouse, CLEAN)
    load_rows(clickhouse, [table_row(A, [0, 1], 1)[:9] + [2], table_row(C, [2, 2], 4)[:9] + [2]])
    result = run("unique_condition_ids", clickhouse)
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["ids_whose_versions_disagree"].value == 1  # C's [2,2]/4 is its [1,1]/2
    assert result.metadata["first_disagreeing_versions"].value == [f"{A}: version 1 [1, 0]/1, version 2 [0, 1]/1"]
    assert result.metadata["duplicated_ids"].value == []


def test_payout_shape_warns_on_vectors_uma_never_reports(clickhouse):
    load_rows(clickhouse, CLEAN + [table_row("d" * 64, [1, 2], 3)])
    result = run("payout_shape", clickhouse)
    assert not result.passed and result.severity.value == "WARN"
    assert result.metadata["unusual_rows"].value == 1


def statuses(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return to_frame(
        [
            {"condition_id": cid, "status": status, "fetched_at": NOW}
            | ({"payout_numerators": [1, 0], "payout_denominator": 1, "winning_index": 0} if status == "resolved" else {})
            | ({"reason": "HTTP 503 (after 6 attempts)"} if status == "failed" else {})
            for cid, status in rows
        ]
    )


@pytest.fixture
def files(tmp_path: Path) -> PayoutFiles:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{A}\n{'a' * 63}1\nnot-an-id\n")
    return PayoutFiles(input_ids_path=str(ids_file), shards_dir=str(tmp_path / "shards"))


RUN = "this-run"


def write_shard(files: PayoutFiles, rows: list[tuple[str, str]], requests: int = 1, retries: int = 0) -> None:
    files.write("ids", "a", pl.DataFrame({"condition_id": [cid for cid, _ in rows]}))
    files.write("statuses", "a", statuses(rows))
    stats = {"ids_fetched": len(rows), "requests": requests, "retries": retries, "rate_limited": 0, "failed_ids": 0, "unrequested_entities": 0, "seconds": 0.1, "run_id": RUN}
    files.write("fetch_stats", "a", pl.DataFrame([stats]))


def test_total_payouts_errors_when_a_fetched_resolution_is_not_in_the_table(clickhouse, files):
    write_shard(files, [(A, "resolved"), ("a" * 63 + "1", "resolved"), ("a" + "0" * 63, "resolved")])
    load_rows(clickhouse, [table_row(A, [1, 0], 1), table_row("a" + "0" * 63, [1, 0], 1)])
    result = run("total_payouts", clickhouse, files)
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["first_missing_ids"].value == ["a" * 63 + "1"]
    assert "| a | 3 | 2 | 1 |" in result.metadata["per_shard"].value  # resolved fetched, rows, missing
    assert "| b | 0 | 0 | 0 |" in result.metadata["per_shard"].value
    load_rows(clickhouse, [table_row("a" * 63 + "1", [1, 0], 1)])
    assert run("total_payouts", clickhouse, files).passed


def test_total_payouts_finds_an_id_swapped_for_another_of_the_same_shard(clickhouse, files):
    """Same count of rows as resolved ids, one of them another id: the digests differ."""
    swapped = "a" * 63 + "1"
    write_shard(files, [(A, "resolved"), (swapped, "resolved")])
    load_rows(clickhouse, [table_row(A, [1, 0], 1), table_row("a" + "0" * 63, [1, 0], 1)])
    result = run("total_payouts", clickhouse, files)
    assert not result.passed and result.metadata["first_missing_ids"].value == [swapped]
    assert "| a | 2 | 2 | 1 |" in result.metadata["per_shard"].value


def test_total_payouts_passes_when_the_table_also_holds_other_ids(clickhouse, files):
    write_shard(files, [(A, "resolved")])
    load_rows(clickhouse, [table_row(A, [1, 0], 1), table_row("a" + "0" * 63, [1, 0], 1)])
    result = run("total_payouts", clickhouse, files)
    assert result.passed and "| a | 1 | 2 | 0 |" in result.metadata["per_shard"].value


class NoIdsBroughtOver:
    """A client that answers queries but refuses to bring ids to Python."""

    def __init__(self, client):
        self.query = client.query

    def query_arrow(self, *args, **kwargs):
        raise AssertionError("the ids were brought over although every digest agreed")


def test_total_payouts_compares_digests_not_ids_when_the_table_holds_exactly_the_resolved_ids(clickhouse, files):
    write_shard(files, [(A, "resolved"), ("a" + "0" * 63, "resolved"), ("a" * 63 + "1", "unresolved")])
    load_rows(clickhouse, [table_row(A, [1, 0], 1), table_row("a" + "0" * 63, [1, 0], 1)])
    assert run("total_payouts", clickhouse, files, wrap=NoIdsBroughtOver).passed


def test_total_payouts_takes_the_loads_digests_and_still_lists_an_id_missing_from_the_table(clickhouse, files):
    """The load hands over the digests of the resolved ids it read; where the table's differ,
    the shard's ids are read from disk to say which are missing."""
    missing = "a" + "0" * 63
    write_shard(files, [(A, "resolved"), (missing, "resolved")])
    load_rows(clickhouse, [table_row(A, [1, 0], 1)])
    checks = table_checks.TableChecks(files, TABLE)
    with clickhouse.get_client() as client:
        checks.add(client, ["a"], id_digests(pl.DataFrame({"condition_id": [A, missing]})))
        total = next(result for result in checks.results(client) if result.check_name == "total_payouts")
    assert not total.passed and total.metadata["first_missing_ids"].value == [missing]


def test_coverage_errors_on_an_id_without_status_and_warns_when_low(files):
    write_shard(files, [(A, "resolved"), ("a" * 63 + "1", "unresolved")])
    assert fetch_checks.coverage_vs_input(files, 0.5).passed
    low = fetch_checks.coverage_vs_input(files, 0.9)
    assert not low.passed and low.severity.value == "WARN"
    assert low.metadata["coverage"].value == 0.5 and low.metadata["invalid_lines"].value == 1

    files.write("statuses", "a", statuses([(A, "resolved")]))
    missing = fetch_checks.coverage_vs_input(files, 0.5)
    assert not missing.passed and missing.severity.value == "ERROR"
    assert missing.metadata["first_ids_without_status"].value == ["a" * 63 + "1"]


def fetch_health(files: PayoutFiles) -> dg.AssetCheckResult:
    """`fetch_health` of RUN, with the failed and malformed ids of every shard on disk."""
    coverage = fetch_checks.Coverage()
    coverage.add_rest(files)
    return fetch_checks.fetch_health(files, RUN, coverage)


def test_fetch_health_errors_on_a_failed_id_and_warns_on_retries(files):
    write_shard(files, [(A, "resolved")], requests=100, retries=0)
    assert fetch_health(files).passed
    write_shard(files, [(A, "resolved")], requests=100, retries=2)
    retried = fetch_health(files)
    assert not retried.passed and retried.severity.value == "WARN"
    write_shard(files, [(A, "failed")], requests=100, retries=0)
    failed = fetch_health(files)
    assert not failed.passed and failed.severity.value == "ERROR"
    assert failed.metadata["first_failed_ids"].value == [A]


def test_fetch_health_counts_every_failed_and_malformed_id_and_lists_the_first_of_each(files):
    failed = [f"a{i:063x}" for i in range(MAX_LISTED + 5)]
    malformed = [f"a{i:063x}" for i in range(100, 103)]
    write_shard(files, [(A, "resolved"), *((cid, "failed") for cid in failed), *((cid, "malformed") for cid in malformed)])
    health = fetch_health(files).metadata
    assert (health["failed"].value, health["malformed"].value) == (MAX_LISTED + 5, 3)
    assert health["first_failed_ids"].value == failed[:MAX_LISTED]
    assert [line.split(": ")[0] for line in health["first_malformed"].value] == malformed


def test_fetch_health_reports_this_runs_figures_and_labels_earlier_ones(tmp_path, monkeypatch):
    truth = make_truth(1500, seed=12)
    monkeypatch.setattr("payout_assets.fetch_plan.MAX_IDS_PER_REQUEST", 25)  # requests holding shard 3's ids alone
    dead_shard = FaultMix(rate=1.0, seed=3, kinds=("500",), id_prefixes=("0x3",))
    with ReplicaServer(truth.rows.values(), faults=dead_shard) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids, max_attempts=2)
        first = backfill(resources, "0", "7")  # shard 3 fails after a retry
        assert failed_checks(first) == {"fetch_health": "ERROR"}
        replica.reset_stats()
        second = backfill(resources, "8", "f")
        payout_requests = replica.stats()["accepted"] - 1  # one discovery
    health = check_results(second)["fetch_health"]
    assert health.passed  # shard 3's retries and failed ids are not this run's
    figures = {key: health.metadata[key].value for key in ("requests", "retries", "failed", "shards_fetched_by_this_run")}
    assert figures == {"requests": payout_requests, "retries": 0, "failed": 0, "shards_fetched_by_this_run": 8}
    earlier = health.metadata["earlier_runs_per_shard"].value.splitlines()[2:]
    assert [line.split(" | ")[:2] for line in earlier] == [[f"| {first.run_id}", shard] for shard in "01234567"]


def test_integration_readiness_errors_on_a_view_missing_a_column(clickhouse):
    load_rows(clickhouse, CLEAN)
    with clickhouse.get_client() as client:
        client.command("CREATE DATABASE IF NOT EXISTS cascadian_clean")
        client.command(view_sql(VIEW, with_existing=False, layout=TableLayout()))
        assert view_checks.integration_readiness(client, TABLE).passed
        client.command(f"CREATE OR REPLACE VIEW {VIEW} AS SELECT condition_id, payout_numerators FROM {TABLE} FINAL")
        result = view_checks.integration_readiness(client, TABLE)
    assert not result.passed and result.severity.value == "ERROR"
    assert "columns are ['condition_id', 'payout_numerators']" in result.metadata["problems"].value


def test_preflight_blocks_the_run_on_an_unreachable_endpoint(tmp_path):
    truth = make_truth(50)
    resources = make_resources(tmp_path, "http://127.0.0.1:9/subgraphs/name/pnl", truth.ids, max_attempts=2)
    result = backfill(resources)
    assert not result.success
    assert failed_checks(result) == {"goldsky_ready": "ERROR"}
    assert "ClientConnectorError" in check_results(result)["goldsky_ready"].metadata["problem"].value
    assert not result.asset_materializations_for_node("goldsky_payouts")


def test_preflight_blocks_on_a_target_table_with_a_wrong_column_type(tmp_path):
    truth = make_truth(50)
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        load_rows(resources["clickhouse"], [], create=CREATE_TABLE.replace("payout_denominator UInt32", "payout_denominator UInt8"))
        result = backfill(resources)
        payout_requests = replica.stats()["accepted"] - 1  # the pre-flight's one discovery request
    assert failed_checks(result) == {"clickhouse_ready": "ERROR"}
    assert check_results(result)["clickhouse_ready"].metadata["problem"].value == "column payout_denominator is UInt8, expected UInt32"
    assert payout_requests == 0


def test_the_probe_goes_out_while_the_input_is_read(tmp_path):
    """Its round trip overlaps reading the input: the replica sees it before the first shard's
    ids are written (which waits for the last of six blocks of lines), and only once."""
    with ReplicaServer([]) as replica:
        result = backfill(make_resources(tmp_path, replica.url, random_ids(6 * BLOCK_LINES, seed=3)), assets=[missing_condition_ids])
        stats = replica.stats()
    assert result.success and check_results(result)["goldsky_ready"].passed
    assert stats["requests"] == 1
    first_shard_written = min(path.stat().st_mtime for path in (tmp_path / "shards" / "ids").glob("*.parquet"))
    assert stats["first_request_at"] < first_shard_written


def test_clickhouse_is_read_while_the_input_is_split_once_the_probe_has_left(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Opening chDB (0.5 s) overlaps reading the input: the readiness read starts before the
    first shard's ids are written, and its finding is still the check's. It starts once the
    probe has left: beside it, the probe took 0.13-0.35 s to leave, and a big fetch's last
    request is a whole number of windows after the probe."""
    order: list[tuple[str, float]] = []
    ready, mark_sent = preflight.clickhouse_ready, SlidingWindowLimiter.mark_sent

    def spied_ready(clickhouse: ClickHouseResource):
        order.append(("clickhouse", time.time()))
        return ready(clickhouse)

    def spied_mark_sent(limiter: SlidingWindowLimiter, slot) -> None:
        mark_sent(limiter, slot)
        order.append(("probe sent", time.time()))

    monkeypatch.setattr(preflight, "clickhouse_ready", spied_ready)
    monkeypatch.setattr(SlidingWindowLimiter, "mark_sent", spied_mark_sent)
    with ReplicaServer([], latency=0.5) as replica:
        resources = make_resources(tmp_path, replica.url, random_ids(6 * BLOCK_LINES, seed=4))
        load_rows(resources["clickhouse"], [], create=CREATE_TABLE.replace("payout_denominator UInt32", "payout_denominator UInt8"))
        result = backfill(resources, assets=[missing_condition_ids])
    assert check_results(result)["clickhouse_ready"].metadata["problem"].value == "column payout_denominator is UInt8, expected UInt32"
    first_shard_written = min(path.stat().st_mtime for path in (tmp_path / "shards" / "ids").glob("*.parquet"))
    assert [what for what, _ in order] == ["probe sent", "clickhouse"] and order[1][1] < first_shard_written


def test_preflight_sends_no_request_for_an_input_without_valid_ids(tmp_path):
    with ReplicaServer([]) as replica:
        resources = make_resources(tmp_path, replica.url, ["not-an-id", "0xZZ"])
        result = backfill(resources)
        requests = replica.stats()["requests"]
    assert failed_checks(result) == {"input_ids_valid": "ERROR", "goldsky_ready": "WARN"}
    assert requests == 0


def test_preflight_warns_on_a_lagging_subgraph_and_estimates_the_backfill(tmp_path):
    truth = make_truth(2500)
    with ReplicaServer(truth.rows.values(), meta_timestamp=int(NOW.timestamp()) - 9 * 3600) as replica:
        result = backfill(make_resources(tmp_path, replica.url, truth.ids))
    assert result.success
    assert failed_checks(result) == {"goldsky_ready": "WARN"}
    lag = check_results(result)["goldsky_ready"].metadata
    assert 8.9 < lag["lag_hours"].value < 9.1
    estimate = check_results(result)["backfill_estimate"].metadata
    assert estimate["ids_to_fetch"].value == 2500
    assert estimate["requests"].value == 3  # batches run across shards: 1,000, 1,000 and 500 ids
    recorded = list(check_results(result))
    assert recorded.index("backfill_estimate") < recorded.index("goldsky_ready")  # estimated while the probe was in flight


def test_storage_writable_errors_on_a_directory_that_cannot_be_made(tmp_path, clickhouse):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # root ignores permissions, but not a file where a directory should be
    files = PayoutFiles(input_ids_path="unused", shards_dir=str(blocker / "shards"))
    result = preflight.storage_writable(files, clickhouse)
    assert not result.passed and result.severity.value == "ERROR"
    assert str(blocker / "shards") in result.metadata["problem"].value
    assert preflight.storage_writable(PayoutFiles(input_ids_path="unused", shards_dir=str(tmp_path / "ok")), clickhouse).passed


@pytest.mark.slow
def test_a_failing_preflight_check_says_why_on_the_command_line(tmp_path: Path):
    """The README's backfill command stops before any request, and the terminal shows the reason."""
    empty = tmp_path / "ids.txt"
    empty.write_text("not an id\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "PAYOUT_INPUT_IDS": str(empty),
        "PAYOUT_SHARDS_DIR": str(tmp_path / "shards"),
        "CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
        "GOLDSKY_URL": "http://127.0.0.1:9/unreachable",
    }
    (tmp_path / "home").mkdir()
    run_ = subprocess.run(BACKFILL_COMMAND, capture_output=True, text=True, env=env, timeout=180)
    output = run_.stdout + run_.stderr
    assert run_.returncode != 0
    assert f"check input_ids_valid failed (ERROR): {empty} holds no valid condition id" in output, output[-3000:]


def test_every_check_describes_what_passing_means():
    from payout_assets import defs

    for checks in [*defs.asset_checks, *defs.assets]:
        for spec in checks.check_specs:
            assert spec.description, f"{spec.name} has no description"


def test_the_probe_logs_every_retry_of_an_unreachable_endpoint(tmp_path: Path):
    ids = make_truth(20).ids
    resources = make_resources(tmp_path, f"http://127.0.0.1:{free_port()}/subgraphs/name/pnl", ids, max_attempts=3)
    with dg.instance_for_test() as instance:
        result = backfill(resources, instance=instance)
        messages = log_messages(instance, result)
    assert failed_checks(result)["goldsky_ready"] == "ERROR"
    waits = [m for m in messages if m.startswith("waiting ") and " before attempt " in m]
    assert [m.split(" before attempt ")[1].split(":")[0] for m in waits] == ["2", "3"], messages
