"""Which ids a run asks for, and in which batches: the rules the README states, at their edges."""

import tempfile
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payout_assets.fetch_plan import ShardFetch, count_to_fetch, ids_to_fetch, packed_batches, request_count, update_statuses
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import STATUS_SCHEMA

CUT_OFF = datetime(2026, 11, 2, tzinfo=timezone.utc)
HERE, ELSEWHERE = "endpoint-here", "endpoint-elsewhere"


def previous(*rows: tuple[str, str, datetime, str | None]) -> pl.DataFrame:
    """Status rows (id, status, fetched_at, endpoint), the other columns null."""
    return pl.DataFrame(
        [{"condition_id": cid, "status": status, "fetched_at": at, "endpoint": endpoint} for cid, status, at, endpoint in rows],
        schema={name: STATUS_SCHEMA[name] for name in ("condition_id", "status", "fetched_at", "endpoint")},
    )


def asked(frame: pl.DataFrame, ids: list[str]) -> list[str]:
    return ids_to_fetch(pl.DataFrame({"condition_id": ids}), frame, CUT_OFF, HERE)


def test_an_id_without_a_status_is_asked():
    assert asked(previous(), ["a"]) == ["a"]


def test_a_resolved_id_is_never_asked_again_whoever_answered_and_however_old():
    old = CUT_OFF - timedelta(days=400)
    assert asked(previous(("a", "resolved", old, ELSEWHERE), ("b", "resolved", old, None)), ["a", "b"]) == []


@pytest.mark.parametrize("status", ["unresolved", "not_found", "malformed"])
def test_an_unsettled_id_is_asked_once_checked_before_the_cut_off_and_not_at_it(status):
    just_before = CUT_OFF - timedelta(microseconds=1)
    frame = previous(("a", status, just_before, HERE), ("b", status, CUT_OFF, HERE))
    assert asked(frame, ["a", "b"]) == ["a"]


def test_a_failed_id_is_asked_however_recently_it_failed():
    assert asked(previous(("a", "failed", CUT_OFF + timedelta(hours=1), HERE)), ["a"]) == ["a"]


def test_an_unsettled_answer_from_another_or_an_unknown_endpoint_is_asked_again():
    fresh = CUT_OFF + timedelta(hours=1)
    frame = previous(("a", "not_found", fresh, ELSEWHERE), ("b", "unresolved", fresh, None), ("c", "unresolved", fresh, HERE))
    assert asked(frame, ["a", "b", "c"]) == ["a", "b"]


def test_statuses_of_ids_outside_the_input_do_not_make_them_asked():
    assert asked(previous(("z", "failed", CUT_OFF, HERE)), ["a"]) == ["a"]


def shard_ids(sizes: list[int]) -> list[tuple[str, list[str]]]:
    """Shards "0", "1", … holding `sizes` ids each, the ids named after their shard."""
    return [(str(shard), [f"{shard}-{n}" for n in range(size)]) for shard, size in enumerate(sizes)]


@pytest.mark.parametrize(
    "sizes, expected",
    [([], []), ([0, 0], []), ([1], [[("0", 1, True)]]), ([1000], [[("0", 1000, True)]]),
     ([1001], [[("0", 1000, False)], [("0", 1, True)]]),
     ([600, 0, 600, 1], [[("0", 600, True), ("2", 400, False)], [("2", 200, True), ("3", 1, True)]]),
     ([999, 1], [[("0", 999, True), ("1", 1, True)]]), ([1000, 1], [[("0", 1000, True)], [("1", 1, True)]])],
)
def test_batches_hold_1000_ids_across_shards_and_mark_each_shards_last_ids(sizes, expected):
    split = list(packed_batches(shard_ids(sizes)))
    assert [[(part.shard, len(part.ids), part.last) for part in batch] for batch in split] == expected
    assert [cid for batch in split for part in batch for cid in part.ids] == [cid for _, ids in shard_ids(sizes) for cid in ids]
    assert request_count(sum(sizes)) == len(split)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 2500), max_size=16))
def test_any_shard_sizes_take_as_few_requests_as_their_ids_need(sizes):
    split = list(packed_batches(shard_ids(sizes)))
    assert len(split) == request_count(sum(sizes))
    assert all(len([cid for part in batch for cid in part.ids]) == 1000 for batch in split[:-1])
    parts = [part for batch in split for part in batch]
    assert [cid for part in parts for cid in part.ids] == [cid for _, ids in shard_ids(sizes) for cid in ids]
    assert [part.shard for part in parts if part.last] == [shard for shard, ids in shard_ids(sizes) if ids]


def test_the_count_to_fetch_is_the_length_of_the_ids_to_fetch_with_and_without_statuses(tmp_path):
    files = PayoutFiles(input_ids_path=str(tmp_path / "ids.txt"), shards_dir=str(tmp_path / "shards"))
    ids = ["a1", "a2", "a3", "a4"]
    files.write("ids", "a", pl.DataFrame({"condition_id": ids}))
    assert count_to_fetch(files, "a", CUT_OFF, HERE) == 4  # never fetched: every id, from the footer
    answered = previous(("a1", "resolved", CUT_OFF, HERE), ("a2", "not_found", CUT_OFF, HERE), ("a3", "failed", CUT_OFF, HERE))
    ShardFetch("a", pl.DataFrame(answered.to_dicts(), schema=STATUS_SCHEMA)).finish(files)
    assert count_to_fetch(files, "a", CUT_OFF, HERE) == len(asked(answered, ids)) == 2  # a3 failed, a4 never asked


def test_rows_answered_after_the_fetch_replace_those_ids_only(tmp_path):
    files = PayoutFiles(input_ids_path=str(tmp_path / "ids.txt"), shards_dir=str(tmp_path / "shards"))

    def rows(*pairs: tuple[str, str]) -> pl.DataFrame:
        return pl.DataFrame([{"condition_id": cid, "status": status, "fetched_at": CUT_OFF} for cid, status in pairs], schema=STATUS_SCHEMA)

    ShardFetch("a", rows(("a2", "unresolved"), ("a1", "not_found"))).finish(files)
    update_statuses(files, "a", rows(("a1", "resolved")))
    written = files.read("statuses", "a")
    assert written.select("condition_id", "status").rows() == [("a1", "resolved"), ("a2", "unresolved")]


def test_ids_are_asked_in_ascending_order_whatever_the_input_order():
    assert asked(previous(("b", "failed", CUT_OFF, HERE)), ["d", "b", "a", "c"]) == ["a", "b", "c", "d"]


ANSWER_IDS = st.lists(st.text("0123456789abcdef", min_size=1, max_size=3), unique=True, max_size=30)


@given(earlier=ANSWER_IDS, fresh=ANSWER_IDS, cuts=st.lists(st.integers(0, 30), max_size=4), seed=st.randoms())
@settings(max_examples=200, deadline=None)
def test_a_shard_is_written_sorted_with_each_id_once_fresh_rows_first_whatever_order_its_answers_came_in(earlier, fresh, cuts, seed):
    """The fetch's answers arrive in any order and in runs of any length, ascending or not (the
    chain's and the change feed's rows): the shard's file still holds each id once, sorted, the
    fresh status where there is one."""
    def rows(ids: list[str], status: str) -> pl.DataFrame:
        return pl.DataFrame([{"condition_id": cid, "status": status} for cid in ids], schema=STATUS_SCHEMA)

    fetch = ShardFetch("a", rows(sorted(earlier), "not_found"))
    bounds = sorted({0, len(fresh), *(min(cut, len(fresh)) for cut in cuts)})
    answers = [rows(fresh[start:end], "resolved") for start, end in zip(bounds, bounds[1:])]
    seed.shuffle(answers)
    for answer in answers:
        fetch.record(answer)
    with tempfile.TemporaryDirectory() as shards:
        files = PayoutFiles(input_ids_path="unused", shards_dir=shards)
        fetch.finish(files)
        written = files.read("statuses", "a").select("condition_id", "status").rows()
    expected = {cid: "not_found" for cid in earlier} | {cid: "resolved" for cid in fresh}
    assert written == sorted(expected.items())
