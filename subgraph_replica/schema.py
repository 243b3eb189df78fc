"""graph-node's GraphQL surface for Polymarket `Condition` entities (pnl and main subgraphs).

Only what a payout client touches is modelled, but that part is as strict as
graph-node: `first` defaults to 100 and is capped at 1000, `skip` at 5000,
ids match exactly, BigInt/BigDecimal are JSON strings, BigDecimal has 34
significant digits, and an indexing error withholds all entity data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Any

from graphql import GraphQLError, GraphQLSchema, build_schema

from .fixtures import ConditionRow
from .store import ConditionStore, Selection

MAX_FIRST, MAX_SKIP = 1000, 5000

_CONDITION_TYPES = {
    "pnl": "type Condition { id: ID! payoutNumerators: [BigInt!]! payoutDenominator: BigInt! }",
    "main": "type Condition { id: ID! payouts: [BigDecimal!] resolutionTimestamp: BigInt }",
}
_COMMON_SDL = """
scalar BigInt
scalar BigDecimal
scalar Bytes
enum OrderDirection { asc desc }
enum Condition_orderBy { id }
input BlockChangedFilter { number_gte: Int! }
input Block_height { hash: Bytes number: Int number_gte: Int }
input Condition_filter {
  id: ID
  id_in: [ID!]
  id_gt: ID
  id_lt: ID
  _change_block: BlockChangedFilter
}
type _Block_ { hash: Bytes number: Int! timestamp: Int parentHash: Bytes }
type _Meta_ { block: _Block_! deployment: String! hasIndexingErrors: Boolean! }
type Query {
  condition(id: ID!, block: Block_height): Condition
  conditions(block: Block_height, first: Int = 100, skip: Int = 0, where: Condition_filter,
             orderBy: Condition_orderBy, orderDirection: OrderDirection): [Condition!]!
  _meta(block: Block_height): _Meta_
}
"""
_DECIMAL = Context(prec=34, rounding=ROUND_HALF_UP)


class QueryRejected(Exception):
    """graph-node refuses the whole query: the answer is this message and `data: null`."""


@dataclass(frozen=True)
class QueryRoot:
    """What one request's resolvers read: a snapshot of the replica's state and settings."""

    store: ConditionStore
    block_number: int
    block_timestamp: int
    deployment: str
    has_indexing_errors: bool = False
    inject_unrequested: int = 0
    history_from_block: int = 0  # earlier blocks are pruned: asking for one is refused

    def at_block(self, block: dict[str, Any] | None) -> int | None:
        """The block a `block: {number: N}` argument asks for (None: the head), or graph-node's refusal."""
        number = None if block is None else block.get("number")
        if number is None:
            return None
        prefix = f"Failed to decode `block.number` value: `subgraph {self.deployment}"
        if number > self.block_number:
            raise QueryRejected(f"{prefix} has only indexed up to block number {self.block_number} "
                                f"and data for block number {number} is therefore not yet available`")
        if number < self.history_from_block:
            raise QueryRejected(f"{prefix} only has data starting at block number {self.history_from_block} "
                                f"and data for block number {number} is therefore not available`")
        return number


@lru_cache(maxsize=4096)  # real payouts repeat a handful of ratios (0, 1, 1/2)
def big_decimal_ratio(numerator: str, denominator: str) -> str:
    """numerator/denominator as graph-node prints a BigDecimal; non-integers pass through raw."""
    try:
        quotient = _DECIMAL.divide(Decimal(int(numerator)), Decimal(int(denominator)))
    except (ValueError, ArithmeticError):
        return numerator
    return format(quotient.normalize(_DECIMAL), "f")


def _is_zero(value: str) -> bool:
    try:
        return int(value) == 0
    except ValueError:
        return False


def _pnl_entity(row: ConditionRow) -> dict[str, Any]:
    return {"id": row.id, "payoutNumerators": list(row.payout_numerators),
            "payoutDenominator": row.payout_denominator}


def _main_entity(row: ConditionRow) -> dict[str, Any]:
    denominator = row.payout_denominator
    payouts = None if _is_zero(denominator) else [
        big_decimal_ratio(n, denominator) for n in row.payout_numerators
    ]
    return {"id": row.id, "payouts": payouts,
            "resolutionTimestamp": row.resolution_timestamp or None}


def unrequested_rows(count: int) -> list[ConditionRow]:
    """Valid-looking resolved entities nobody asked for (a corrupt upstream's extras)."""
    return [
        ConditionRow("0x" + hashlib.sha256(f"unrequested:{n}".encode()).hexdigest(),
                     ("1", "0"), "1", "1700000000", 1)
        for n in range(count)
    ]


def _resolvers(to_entity: Callable[[ConditionRow], dict[str, Any]]) -> dict[str, Callable[..., Any]]:
    def conditions(root: QueryRoot, _info: Any, first: int | None = 100, skip: int | None = 0,
                   where: dict[str, Any] | None = None, orderBy: str | None = None,
                   orderDirection: str | None = None, block: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if root.has_indexing_errors:
            raise QueryRejected("indexing_error")
        at = root.at_block(block)
        first = 100 if first is None else first
        skip = 0 if skip is None else skip
        if not 0 <= first <= MAX_FIRST:
            raise QueryRejected(f"The `first` argument must be between 0 and {MAX_FIRST}, but is {first}")
        if not 0 <= skip <= MAX_SKIP:
            raise QueryRejected(f"The `skip` argument must be between 0 and {MAX_SKIP}, but is {skip}")
        rows = root.store.select(Selection.from_where(where), first, skip, orderDirection == "desc", at)
        rows += unrequested_rows(root.inject_unrequested)
        return [to_entity(row) for row in rows]

    def condition(root: QueryRoot, _info: Any, id: str, block: dict[str, Any] | None = None) -> dict[str, Any] | None:
        if root.has_indexing_errors:
            raise QueryRejected("indexing_error")
        row = root.store.get(id, root.at_block(block))
        return None if row is None else to_entity(row)

    def meta(root: QueryRoot, _info: Any, block: dict[str, Any] | None = None) -> dict[str, Any]:
        at = root.at_block(block)
        number = root.block_number if at is None else at
        return {
            "block": {"number": number, "timestamp": root.block_timestamp,
                      "hash": _block_hash(number), "parentHash": _block_hash(number - 1)},
            "deployment": root.deployment,
            "hasIndexingErrors": root.has_indexing_errors,
        }

    return {"conditions": conditions, "condition": condition, "_meta": meta}


def _block_hash(number: int) -> str:
    return "0x" + hashlib.sha256(f"block:{number}".encode()).hexdigest()


def build_replica_schema(variant: str = "pnl") -> GraphQLSchema:
    """The executable schema of the pnl-subgraph (`pnl`) or the main Polymarket subgraph (`main`)."""
    if variant not in _CONDITION_TYPES:
        raise ValueError(f"unknown schema {variant!r}; expected one of {sorted(_CONDITION_TYPES)}")
    schema = build_schema(_CONDITION_TYPES[variant] + _COMMON_SDL)
    for name in ("BigInt", "BigDecimal", "Bytes"):
        schema.type_map[name].serialize = str  # graph-node sends these as JSON strings
    to_entity = _pnl_entity if variant == "pnl" else _main_entity
    for field_name, resolve in _resolvers(to_entity).items():
        schema.query_type.fields[field_name].resolve = resolve
    return schema


def rejection(errors: list[GraphQLError]) -> QueryRejected | None:
    """The first whole-query refusal among execution errors, if any."""
    for error in errors:
        if isinstance(error.original_error, QueryRejected):
            return error.original_error
    return None
