"""One status per asked id, whatever the answer holds; how fresh statuses replace earlier ones."""

from datetime import datetime, timezone

import polars as pl

from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.statuses import STATUS_SCHEMA, classify, count_statuses, merge, to_frame
from payout_assets.core.subgraph import BatchAnswer, PayoutShape, SubgraphInfo

NOW = datetime(2026, 11, 2, tzinfo=timezone.utc)
PNL = PayoutShape("numerators", False)
A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def entity(cid: str, numerators: list[str], denominator: str) -> dict:
    return {"id": f"0x{cid}", "payoutNumerators": numerators, "payoutDenominator": denominator}


def statuses(answer: BatchAnswer) -> dict[str, dict]:
    rows, _ = classify(answer, PNL, NOW)
    return {row["condition_id"]: row for row in rows}


def test_every_asked_id_gets_exactly_one_status_from_the_answer():
    answer = BatchAnswer(
        ids=[A, B, C, D],
        entities=[entity(A, ["1", "0"], "1"), entity(B, [], "0"), entity(D, ["1"], "1"), entity(D, ["0"], "0")],
        block_number=7,
    )
    rows = statuses(answer)
    assert list(rows) == [A, B, C, D]
    assert (rows[A]["status"], rows[A]["payout_numerators"], rows[A]["payout_denominator"]) == ("resolved", [1, 0], 1)
    assert rows[B]["status"] == "unresolved" and rows[C]["status"] == "not_found"
    assert rows[D]["status"] == "malformed" and "2 entities" in rows[D]["reason"]
    assert {row["block_number"] for row in rows.values()} == {7}


def test_rows_that_share_a_payout_never_share_a_list():
    rows = statuses(BatchAnswer(ids=[A, B], entities=[entity(A, ["1", "0"], "1"), entity(B, ["1", "0"], "1")], block_number=1))
    rows[A]["payout_numerators"].append(9)
    assert rows[B]["payout_numerators"] == [1, 0]


def test_an_answer_that_never_came_fails_every_id_with_a_bounded_reason():
    rows, unrequested = classify(BatchAnswer(ids=[A, B], error="HTTP 503 " + "x" * 5000), PNL, NOW, AnswerBounds())
    assert unrequested == 0
    assert [row["status"] for row in rows] == ["failed", "failed"]
    assert all(len(row["reason"]) <= AnswerBounds().max_reason_chars for row in rows)


def test_a_resolution_time_of_zero_is_none_and_the_fetch_time_stands_for_it():
    resolved = [entity(cid, ["1", "0"], "1") | {"resolutionTimestamp": stamp} for cid, stamp in ((A, "0"), (B, "1700000000"))]
    rows = statuses(BatchAnswer(ids=[A, B], entities=resolved, block_number=1))
    assert (rows[A]["resolved_at"], rows[A]["resolved_at_source"]) == (NOW, "fetch_time")
    assert (rows[B]["resolved_at"], rows[B]["resolved_at_source"]) == (datetime.fromtimestamp(1700000000, timezone.utc), "subgraph")


def test_entities_nobody_asked_for_are_counted_not_kept():
    rows, unrequested = classify(BatchAnswer(ids=[A], entities=[entity(A, ["0", "1"], "1"), entity(B, ["1", "0"], "1")], block_number=1), PNL, NOW)
    assert [row["condition_id"] for row in rows] == [A] and unrequested == 1


def test_frames_record_who_answered_and_fresh_statuses_replace_earlier_ones_by_id():
    info = SubgraphInfo("endpoint-x", PNL, 9, None, False, True)
    earlier = pl.DataFrame([{"condition_id": A, "status": "unresolved"}, {"condition_id": C, "status": "not_found"}], schema=STATUS_SCHEMA)
    fresh = to_frame(list(statuses(BatchAnswer(ids=[A, B], entities=[entity(A, ["1", "0"], "1")], block_number=9)).values()), info)
    assert set(fresh["endpoint"]) == {"endpoint-x"} and set(fresh["payout_shape"]) == {"numerators"}
    merged = merge(earlier, fresh)
    assert merged.select("condition_id", "status").rows() == [(A, "resolved"), (B, "not_found"), (C, "not_found")]
    assert count_statuses(merged) == {"resolved": 1, "unresolved": 0, "not_found": 2, "malformed": 0, "failed": 0}
