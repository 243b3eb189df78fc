"""In-memory entity store with graph-node's `conditions` selection semantics.

Rows are indexed by id so an `id_in` query costs O(ids asked), not O(rows):
the replica's own CPU must stay negligible next to the client under test.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .fixtures import ConditionRow


@dataclass(frozen=True)
class Selection:
    """The `where` filter of a `conditions` query (only what graph-node offers and we model)."""

    id: str | None = None
    id_in: tuple[str, ...] | None = None
    id_gt: str | None = None
    id_lt: str | None = None
    min_change_block: int | None = None

    @classmethod
    def from_where(cls, where: dict[str, Any] | None) -> Selection:
        where = where or {}
        id_in = where.get("id_in")
        change = where.get("_change_block")
        return cls(
            id=where.get("id"),
            id_in=None if id_in is None else tuple(id_in),
            id_gt=where.get("id_gt"),
            id_lt=where.get("id_lt"),
            min_change_block=None if change is None else change["number_gte"],
        )

    def accepts(self, row: ConditionRow) -> bool:
        return (
            (self.id is None or row.id == self.id)
            and (self.id_gt is None or row.id > self.id_gt)
            and (self.id_lt is None or row.id < self.id_lt)
            and (self.min_change_block is None or row.change_block >= self.min_change_block)
        )


class ConditionStore:
    """Entities by exact id; a corrupt fixture may hold several rows under one id.

    Like graph-node, it answers as of any block: an upsert keeps the versions it replaces,
    and a version exists from its `change_block` on (a fixture row has no earlier version).
    """

    def __init__(self, rows: Iterable[ConditionRow] = ()) -> None:
        self._by_id: dict[str, list[ConditionRow]] = {}
        self._replaced: dict[str, list[list[ConditionRow]]] = {}  # older versions, oldest first
        self._sorted_ids: list[str] | None = None
        self.head_block = 0
        for row in rows:
            self._by_id.setdefault(row.id, []).append(row)
            self.head_block = max(self.head_block, row.change_block)

    def upsert(self, rows: Iterable[ConditionRow]) -> None:
        """Replace every entity under each given id by the given rows."""
        fresh: dict[str, list[ConditionRow]] = {}
        for row in rows:
            fresh.setdefault(row.id, []).append(row)
            self.head_block = max(self.head_block, row.change_block)
        if fresh.keys() - self._by_id.keys():
            self._sorted_ids = None
        for entity_id in fresh.keys() & self._by_id.keys():
            self._replaced.setdefault(entity_id, []).append(self._by_id[entity_id])
        self._by_id.update(fresh)

    def _rows(self, entity_id: str, block: int | None) -> list[ConditionRow]:
        """The entity's rows as of `block` (None: the latest)."""
        rows = self._by_id.get(entity_id, [])
        if block is None:
            return rows
        for version in [rows, *reversed(self._replaced.get(entity_id, []))]:
            if version and version[0].change_block <= block:
                return version
        return []

    def get(self, entity_id: str, block: int | None = None) -> ConditionRow | None:
        rows = self._rows(entity_id, block)
        return rows[0] if rows else None

    def select(self, where: Selection, first: int, skip: int, descending: bool, block: int | None = None) -> list[ConditionRow]:
        """Matching rows as of `block`, ordered by id, then `skip`/`first` applied, as graph-node does."""
        if where.id_in is not None or where.id is not None:
            wanted = dict.fromkeys(where.id_in if where.id_in is not None else (where.id,))
            found = [r for i in wanted for r in self._rows(i, block) if where.accepts(r)]
            found.sort(key=_row_id, reverse=descending)
            return found[skip : skip + first]
        return list(islice(self._scan(where, descending, block), skip, skip + first))

    def _scan(self, where: Selection, descending: bool, block: int | None) -> Iterator[ConditionRow]:
        """Walk ids in order within the id_gt/id_lt bounds, stopping as soon as the page is full."""
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._by_id)
        ids = self._sorted_ids
        lo = 0 if where.id_gt is None else bisect_right(ids, where.id_gt)
        hi = len(ids) if where.id_lt is None else bisect_left(ids, where.id_lt)
        span = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        for index in span:
            for row in self._rows(ids[index], block):
                if where.accepts(row):
                    yield row


def _row_id(row: ConditionRow) -> str:
    return row.id
