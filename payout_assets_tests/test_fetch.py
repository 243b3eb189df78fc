"""The fetch: a shorter input forgets nothing that was settled (issue 11), the progress it logs,
and its checks' reading of each shard while later answers are awaited (issue 14)."""

import gc
import threading
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from payout_assets.checks import fetch_checks
from payout_assets.checks.fetch_checks import Coverage
from payout_assets.checks.table_checks import TableChecks
from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.statuses import to_frame
from payout_assets.core.subgraph import BatchAnswer, PayoutShape, SubgraphInfo
from payout_assets import fetch, load
from payout_assets.fetch import Progress
from payout_assets.fetch_plan import Part, ShardFetch
from payout_assets.load import TABLE
from payout_assets.partitions import SHARDS
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets_tests.support import (
    Truth, backfill, check_results, load_only, log_messages, make_resources, make_truth, materialized, query,
)
from subgraph_replica import ReplicaServer


def test_batches_run_across_shards_so_a_run_asks_in_as_few_requests_as_its_ids_need(tmp_path: Path):
    """2,500 ids over 16 shards: three requests (1,000, 1,000 and 500 ids) and the probe, not one
    or more per shard; each shard still gets exactly its ids' statuses."""
    truth = make_truth(2500, seed=9)
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        result = backfill(resources)
        stats = replica.stats()
    assert result.success
    assert (stats["accepted"], stats["ids_requested"]) == (1 + 3, 2500)
    for shard in SHARDS:
        written = resources["files"].read("statuses", shard)
        assert sorted(written["condition_id"]) == sorted(cid for cid in truth.ids if cid.startswith(shard))
        assert dict(zip(written["condition_id"], written["status"])) == {cid: truth.status(cid) for cid in written["condition_id"]}
    assert materialized(result, "goldsky_payouts").metadata["requests"].value == 3  # the shards' sum: each request counted once


def test_a_shard_is_written_once_the_batch_ending_its_ids_is_answered_not_when_its_earlier_ones_are(tmp_path: Path):
    """Batches are asked a window ahead: a shard's first batches may all be answered before
    the one that ends its ids is counted; the shard must wait for it, then hold every id."""
    ids = [f"0{i:063x}" for i in range(4)]
    files = make_resources(tmp_path, "http://unused", ids)["files"]
    written: list[str] = []
    run = fetch.FetchRun({"0": ShardFetch("0")}, plan=lambda shard: (to_frame([]), ids), files=files, written=written.append)
    info = SubgraphInfo("endpoint", PayoutShape("numerators", False), 1, None, False, False)
    first, last = [Part("0", ids[:2], last=False)], [Part("0", ids[2:], last=True)]
    run.count(first)
    fetch._record(first, BatchAnswer(ids[:2], block_number=1), info, run, AnswerBounds(), 0.0)
    assert written == [] and not files.exists("statuses", "0")  # every batch counted so far is in, but not the last
    run.count(last)
    fetch._record(last, BatchAnswer(ids[2:], block_number=1), info, run, AnswerBounds(), 0.0)
    assert written == ["0"]
    assert sorted(files.read("statuses", "0")["condition_id"]) == ids


def test_ids_that_leave_the_input_keep_their_status_and_are_not_fetched_again(tmp_path: Path):
    truth: Truth = make_truth(20, seed=5)
    resolved = set(truth.resolved())
    kept = truth.ids[:5]
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        assert backfill(resources).success
        Path(resources["files"].input_ids_path).write_text("\n".join(kept) + "\n")
        shorter = backfill(resources)
        on_disk = {cid for shard in SHARDS for cid in resources["files"].read("statuses", shard)["condition_id"]}
        Path(resources["files"].input_ids_path).write_text("\n".join(truth.ids) + "\n")
        replica.reset_stats()
        again = backfill(resources)
        asked = {entity_id[2:] for entity_id in replica.requested_ids()}
    assert on_disk == set(truth.ids)  # the 15 that left the input are still known
    # ...but the shorter run counts and loads only its own five
    assert shorter.asset_materializations_for_node("goldsky_payouts")[0].metadata["ids"].value == len(kept)
    assert check_results(shorter)["coverage_vs_input"].metadata["valid_input_ids"].value == len(kept)
    assert check_results(shorter)["total_payouts"].passed
    assert not asked & resolved  # back in the input: no resolved id is fetched again
    assert materialized(again, "resolutions_external_ingest").metadata["rows_inserted"].value == 0
    assert query(resources, f"SELECT count() FROM {TABLE}") == [(len(resolved),)]


def test_the_progress_eta_follows_the_rate_limit_when_answers_come_a_window_at_a_time():
    # 2,000,000 ids at 50 requests / 10 s: 5 s in, the first window's 50,000 answers are in.
    progress = Progress(2_000_000, started=0.0, seconds_per_request=10 / 50)
    assert not progress.due(4.9)
    progress.done_ids = 50_000
    assert progress.due(5.0)
    assert progress.line(5.0).endswith("10000 ids/s, ETA 390 s")  # not the 195 s of the pace so far
    assert not progress.due(9.9)
    # Slower than the limit allows (a slow upstream): the pace so far is the longer.
    progress.done_ids = 60_000
    assert progress.line(60.0).endswith("1000 ids/s, ETA 1940 s")
    progress.done_ids = 2_000_000
    assert progress.due(60.1) and progress.line(60.1).endswith("ETA 0 s")


def test_a_fetch_shorter_than_the_progress_interval_logs_one_line(tmp_path: Path):
    truth = make_truth(300, seed=8)
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        instance = dg.DagsterInstance.ephemeral()
        result = backfill(resources, instance=instance)
    assert result.success
    [line] = [line for line in log_messages(instance, result) if line.startswith("fetched ")]  # the end's only
    assert line.startswith(f"fetched 300/300 ids, {len(truth.resolved())} resolved, ") and line.endswith("ETA 0 s")


def test_each_shard_is_read_back_loaded_and_checked_while_later_shards_are_still_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    truth = make_truth(400, seed=21)
    with ReplicaServer(truth.rows.values(), latency=0.05) as replica:
        # One request at a time, of 10 ids: shard 0 (about 25 ids) is written while about 37 requests
        # are still to go; and each shard is a group's worth of ids, as from 1,000,000 ids on.
        monkeypatch.setattr("payout_assets.fetch_plan.MAX_IDS_PER_REQUEST", 10)
        resources = make_resources(tmp_path, replica.url, truth.ids, max_in_flight=1)
        monkeypatch.setattr(load, "LOAD_GROUP_ROWS", 1)
        answered_when_read: dict[str, int] = {}
        answered_when_loaded: dict[str, int] = {}
        answered_when_checked: dict[str, int] = {}
        add, load_rows, check = Coverage.add, load.load_rows, TableChecks.add

        def spied_add(coverage: Coverage, files, shard: str) -> None:
            answered_when_read[shard] = replica.stats()["accepted"]
            add(coverage, files, shard)

        def spied_load_rows(client, layout, group: list[str], read):
            answered_when_loaded.update(dict.fromkeys(group, replica.stats()["accepted"]))
            return load_rows(client, layout, group, read)

        def spied_check(checks: TableChecks, client, group: list[str], *fetched) -> None:
            answered_when_checked.update(dict.fromkeys(group, replica.stats()["accepted"]))
            check(checks, client, group, *fetched)

        monkeypatch.setattr(Coverage, "add", spied_add)
        monkeypatch.setattr(TableChecks, "add", spied_check)
        monkeypatch.setattr(load, "load_rows", spied_load_rows)
        result = backfill(resources)
        answered = replica.stats()["accepted"]
    assert result.success and check_results(result)["coverage_vs_input"].metadata["valid_input_ids"].value == 400
    assert sorted(answered_when_read) == sorted(answered_when_loaded) == sorted(answered_when_checked) == list(SHARDS)
    assert answered_when_read["0"] < answered - 10  # read back long before the last shard's answer
    assert answered_when_loaded["0"] < answered - 10  # loaded
    assert answered_when_checked["0"] < answered - 10  # and read for the table checks
    assert check_results(result)["total_payouts"].metadata["unique_conditions"].value == len(truth.resolved())
    assert query(resources, f"SELECT count() FROM {TABLE}") == [(len(truth.resolved()),)]


def test_small_shards_wait_for_each_other_and_are_loaded_and_checked_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A group's load and table reads cost about the same whatever its size: shards holding
    fewer than LOAD_GROUP_ROWS ids together are loaded once, after the last answer, in groups
    of consecutive shards holding at most that many."""
    truth = make_truth(400, seed=22)
    loaded: list[list[str]] = []
    checked: list[list[str]] = []
    load_rows, check = load.load_rows, TableChecks.add

    def spied_load_rows(client, layout, group: list[str], read):
        loaded.append(group)
        return load_rows(client, layout, group, read)

    def spied_check(checks: TableChecks, client, group: list[str], *fetched) -> None:
        checked.append(group)
        check(checks, client, group, *fetched)

    monkeypatch.setattr(load, "load_rows", spied_load_rows)
    monkeypatch.setattr(TableChecks, "add", spied_check)
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        assert backfill(resources).success
        loaded_all_at_once = loaded.copy()
        loaded.clear()
        monkeypatch.setattr(load, "LOAD_GROUP_ROWS", 60)  # 2-3 shards of about 25 ids
        assert load_only(resources).success
    assert loaded_all_at_once == checked[:1] == [list(SHARDS)]
    assert [shard for group in loaded for shard in group] == list(SHARDS)
    ids_in = {shard: sum(cid.startswith(shard) for cid in truth.ids) for shard in SHARDS}
    assert all(len(group) == 1 or sum(map(ids_in.get, group)) <= 60 for group in loaded)
    assert max(map(len, loaded)) > 1
    assert query(resources, f"SELECT count() FROM {TABLE}") == [(len(truth.resolved()),)]


def test_shards_written_before_the_rate_limit_holds_the_next_requests_back_are_loaded_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Between windows no request awaits an answer: the shards written wait for no more, however
    few ids they hold, and are loaded and checked then instead of after the last answer."""
    truth = make_truth(400, seed=25)
    loaded_when: list[tuple[list[str], int]] = []
    load_rows = load.load_rows

    def spied_load_rows(client, layout, group: list[str], read):
        loaded_when.append((group, replica.stats()["accepted"]))
        return load_rows(client, layout, group, read)

    monkeypatch.setattr(load, "load_rows", spied_load_rows)
    monkeypatch.setattr("payout_assets.fetch_plan.MAX_IDS_PER_REQUEST", 100)  # four requests, and the probe
    with ReplicaServer(truth.rows.values(), latency=0.02) as replica:
        result = backfill(make_resources(tmp_path, replica.url, truth.ids, rate_limit=2, window_seconds=0.4))
        accepted = replica.stats()["accepted"]
    assert result.success and accepted == 5
    assert [shard for group, _ in loaded_when for shard in group] == list(SHARDS)
    assert loaded_when[0][1] < accepted  # shard 0 (with others) loaded before the last request was sent
    assert check_results(result)["total_payouts"].metadata["unique_conditions"].value == len(truth.resolved())


def test_the_table_checks_take_the_resolved_ids_from_the_load_instead_of_reading_them_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Reading a shard's resolved ids again for the table checks, right after the load read
    them, was the load's peak (+30 MB at 125,000 ids): the load hands over their digests."""
    truth = make_truth(400, seed=24)
    reads: list[list[str] | None] = []
    input_statuses = PayoutFiles.input_statuses

    def spied_input_statuses(files: PayoutFiles, shard: str, columns=None, where=None) -> pl.DataFrame:
        reads.append(columns)
        return input_statuses(files, shard, columns, where)

    monkeypatch.setattr(PayoutFiles, "input_statuses", spied_input_statuses)
    with ReplicaServer(truth.rows.values()) as replica:
        result = backfill(make_resources(tmp_path, replica.url, truth.ids))
    assert result.success and check_results(result)["total_payouts"].passed
    assert reads.count(load.LOAD_COLUMNS) == len(SHARDS) and ["condition_id"] not in reads


def test_the_last_small_shards_are_loaded_while_the_fetch_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Once the last shard is written, the shards still waiting are loaded at once: the fetch's
    checks are computed meanwhile, not before."""
    truth = make_truth(200, seed=23)
    load_started, waited = threading.Event(), []
    load_rows, fetch_health = load.load_rows, fetch_checks.fetch_health

    def spied_load_rows(*args):
        load_started.set()
        return load_rows(*args)

    def spied_fetch_health(*args):
        waited.append(load_started.wait(timeout=10))
        return fetch_health(*args)

    monkeypatch.setattr(load, "load_rows", spied_load_rows)
    monkeypatch.setattr(fetch_checks, "fetch_health", spied_fetch_health)
    with ReplicaServer(truth.rows.values()) as replica:
        result = backfill(make_resources(tmp_path, replica.url, truth.ids))
    assert result.success and waited == [True]


def test_a_step_dagster_fails_on_an_event_leaves_nothing_waiting_on_its_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Dagster refuses one of the fetch's check results (one naming no asset, in an op of two):
    the op's generator is left suspended and closed later by the collector, which must not wait
    on the worker thread it used (it once did, forever, and the run's process never exited)."""
    truth = make_truth(50, seed=9)
    monkeypatch.setattr(fetch_checks, "fetch_health", lambda *args: dg.AssetCheckResult(check_name="fetch_health", passed=True))
    with ReplicaServer(truth.rows.values()) as replica:
        result = backfill(make_resources(tmp_path, replica.url, truth.ids))
    assert not result.success
    del result
    collected = threading.Event()
    threading.Thread(target=lambda: (gc.collect(), collected.set()), daemon=True).start()
    assert collected.wait(60), "closing the failed step's generator waits on its worker thread"
