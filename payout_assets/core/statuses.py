"""The fetch result of every input id: exactly one status, with the payout or the reason.

`goldsky_payouts` stores these rows per shard as Parquet; the load, the checks and the
sensor read them back, so the load can be re-run without fetching again.
"""

from collections import Counter
from datetime import datetime, timezone
from typing import Any

import polars as pl

from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.payouts import UINT32_MAX, MalformedPayout, Payout, from_decimals, from_numerators, shown
from payout_assets.core.subgraph import BatchAnswer, PayoutShape, SubgraphInfo

RESOLVED, UNRESOLVED, NOT_FOUND, MALFORMED, FAILED = (
    "resolved",
    "unresolved",
    "not_found",
    "malformed",
    "failed",
)
STATUSES = (RESOLVED, UNRESOLVED, NOT_FOUND, MALFORMED, FAILED)

# Which source settled a resolved row: the subgraph, or the contract itself (chain_fallback.py),
# told apart by `payout_shape`; the load writes it as the table's `source`.
SUBGRAPH_SOURCE, CHAIN_SOURCE = "goldsky-api", "polygon-ctf"
CHAIN_SHAPE = "chain"
SOURCE_OF_ROW = pl.when(pl.col("payout_shape") == CHAIN_SHAPE).then(pl.lit(CHAIN_SOURCE)).otherwise(pl.lit(SUBGRAPH_SOURCE))

STATUS_SCHEMA = {
    "condition_id": pl.String,
    "status": pl.Enum(STATUSES),
    "payout_numerators": pl.List(pl.UInt32),
    "payout_denominator": pl.UInt32,
    "winning_index": pl.Int32,
    "resolved_at": pl.Datetime("us", "UTC"),
    "resolved_at_source": pl.String,  # "subgraph", "chain" (chain_times.py) or "fetch_time"
    "block_number": pl.UInt64,
    "fetched_at": pl.Datetime("us", "UTC"),
    "reason": pl.String,
    # Who answered: an unsettled status is confirmed only through the same endpoint and shape.
    "endpoint": pl.String,  # endpoint_fingerprint of the subgraph URL
    "payout_shape": pl.String,  # "numerators", "decimals", or "chain" (settled by the contract)
}


def _row(condition_id: str, status: str, fetched_at: datetime, **values: Any) -> dict[str, Any]:
    return {"condition_id": condition_id, "status": status, "fetched_at": fetched_at, **values}


def _resolution_time(raw: object) -> int | None:
    """A `resolutionTimestamp` in unix seconds; None where the subgraph has none (0 or absent).

    It must fit ClickHouse's DateTime (UInt32 seconds), which the table stores it in."""
    if raw is None or raw == "":
        return None
    text = str(raw) if type(raw) is int else raw
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text.lstrip("0")) > 10:
        raise MalformedPayout(f"resolutionTimestamp {shown(raw)} is not a unix time")
    seconds = int(text)
    if seconds > UINT32_MAX:
        raise MalformedPayout(f"resolutionTimestamp {seconds} is past ClickHouse's DateTime range")
    return seconds or None


def _read_payout(entity: dict[str, Any], shape: PayoutShape, bounds: AnswerBounds) -> Payout | None:
    if shape.kind == "numerators":
        return from_numerators(entity.get("payoutNumerators"), entity.get("payoutDenominator"), bounds)
    return from_decimals(entity.get("payouts"), bounds)


def _payout_key(entity: dict[str, Any], shape: PayoutShape) -> tuple[str, ...] | None:
    """The values an entity's payout depends on, when all are plain strings (the wire format of
    BigInt and BigDecimal), so that `1`, `1.0`, `True` and a missing field never share a key."""
    if shape.kind == "numerators":
        values, denominator = entity.get("payoutNumerators"), entity.get("payoutDenominator")
    else:
        values, denominator = entity.get("payouts"), ""
    if type(values) is not list or type(denominator) is not str:
        return None
    for value in values:  # a loop, not all(<generator>): this runs for every id
        if type(value) is not str:
            return None
    return (denominator, *values)


class PayoutReadings:
    """Each distinct payout of a batch read once: a batch holds a handful of payouts ([1,0],
    [0,1], [1,1], unresolved) over and over, under as many resolution times. A 1,000-id batch
    with a time per id was classified in 4.5 ms when the time was part of what was read once,
    in 1.5 ms this way; the last window's ~50 answers are classified after the last one arrives."""

    def __init__(self, shape: PayoutShape, bounds: AnswerBounds) -> None:
        self._shape, self._bounds = shape, bounds
        self._read: dict[tuple[str, ...], Payout | str | None] = {}  # a payout, none yet, or why it is malformed

    def payout(self, entity: dict[str, Any]) -> Payout | None:
        """The entity's payout, None while unresolved; raises MalformedPayout."""
        key = _payout_key(entity, self._shape)
        if key is None:
            return _read_payout(entity, self._shape, self._bounds)
        if key not in self._read:
            try:
                self._read[key] = _read_payout(entity, self._shape, self._bounds)
            except MalformedPayout as problem:
                self._read[key] = str(problem)
        read = self._read[key]
        if isinstance(read, str):
            raise MalformedPayout(read)  # a fresh one: a raised exception keeps every traceback it went through
        return read


def _classify_entity(
    condition_id: str, entity: dict[str, Any], payouts: PayoutReadings, block: int | None, fetched_at: datetime,
    bounds: AnswerBounds,
) -> dict[str, Any]:
    """One entity's row; a value no exact payout explains makes it `malformed`, never an error."""
    try:
        payout = payouts.payout(entity)
        timestamp = _resolution_time(entity.get("resolutionTimestamp"))
    except MalformedPayout as problem:
        return _row(condition_id, MALFORMED, fetched_at, block_number=block, reason=bounds.reason(str(problem)))
    if payout is None:
        return _row(condition_id, UNRESOLVED, fetched_at, block_number=block)
    return _row(
        condition_id,
        RESOLVED,
        fetched_at,
        payout_numerators=list(payout.numerators),
        payout_denominator=payout.denominator,
        winning_index=payout.winning_index,
        resolved_at=fetched_at if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc),
        resolved_at_source="fetch_time" if timestamp is None else "subgraph",
        block_number=block,
    )


def classify(
    answer: BatchAnswer, shape: PayoutShape, fetched_at: datetime, bounds: AnswerBounds = AnswerBounds()
) -> tuple[list[dict[str, Any]], int]:
    """One status row per asked id, in the order asked, and how many entities answered ids
    nobody asked for.

    Whatever the entities hold, this returns: a value no payout explains is `malformed`,
    with a reason of at most `bounds.max_reason_chars` characters and no secret in it."""
    if answer.error is not None:
        reason = bounds.reason(answer.error)
        return [_row(cid, FAILED, fetched_at, reason=reason) for cid in answer.ids], 0
    asked = {f"0x{cid}": cid for cid in answer.ids}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entity in answer.entities:
        by_id.setdefault(str(entity.get("id")), []).append(entity)
    payouts = PayoutReadings(shape, bounds)
    rows = []
    for prefixed, cid in asked.items():
        entities = by_id.get(prefixed, [])
        if not entities:
            rows.append(_row(cid, NOT_FOUND, fetched_at, block_number=answer.block_number))
        elif len(entities) > 1:
            reason = f"the subgraph returned {len(entities)} entities for this id"
            rows.append(_row(cid, MALFORMED, fetched_at, block_number=answer.block_number, reason=reason))
        else:
            rows.append(_classify_entity(cid, entities[0], payouts, answer.block_number, fetched_at, bounds))
    return rows, len(set(by_id) - set(asked))


# Columns polars builds slowly, object by object, but whose values repeat: a batch holds a
# handful of payout vectors and a single fetch time.
_REPEATING = {"payout_numerators", "resolved_at", "fetched_at"}


def _column(name: str, values: list[Any]) -> pl.Series:
    """One column; a repeating one is converted once per distinct value, then gathered."""
    dtype = STATUS_SCHEMA[name]
    if name not in _REPEATING:
        return pl.Series(name, values, dtype=dtype)
    codes: dict[Any, int] = {}
    try:
        index = [None if v is None else codes.setdefault(tuple(v) if type(v) is list else v, len(codes)) for v in values]
    except TypeError:  # an unhashable value: no shortcut
        return pl.Series(name, values, dtype=dtype)
    return pl.Series(name, list(codes), dtype=dtype).gather(pl.Series(index, dtype=pl.UInt32))


def to_frame(rows: list[dict[str, Any]], answered_by: SubgraphInfo | None = None) -> pl.DataFrame:
    """Status rows (dicts; absent keys are null) as a frame, built column by column, stamped
    with the endpoint and payout shape that answered them."""
    frame = pl.DataFrame([_column(name, [row.get(name) for row in rows]) for name in STATUS_SCHEMA])
    if answered_by is None:
        return frame
    return frame.with_columns(
        endpoint=pl.lit(answered_by.endpoint, pl.String), payout_shape=pl.lit(answered_by.shape.kind, pl.String)
    )


def merge(previous: pl.DataFrame, fresh: pl.DataFrame) -> pl.DataFrame:
    """Fresh statuses replace earlier ones id by id; ids not fetched again keep theirs; sorted
    by id. Inputs already sorted (the file's, the fetch's answers) are merged, not sorted: a
    125,000-id shard's write peaked 32 MB above what it held when sorted, 12 MB when merged."""
    fresh = _by_id(fresh)
    kept = _by_id(previous.join(fresh.select("condition_id"), on="condition_id", how="anti", maintain_order="left"))
    return kept.merge_sorted(fresh, key="condition_id")


def _by_id(frame: pl.DataFrame) -> pl.DataFrame:
    return frame if frame["condition_id"].is_sorted() else frame.sort("condition_id")


def count_statuses(frame: pl.DataFrame) -> Counter[str]:
    counts = Counter({status: 0 for status in STATUSES})
    counts.update(dict(frame.group_by("status").len().iter_rows()))
    return counts
