"""graph-node's side of the conversation: the query shapes this project sends and the answers
it keeps, apart from the HTTP client that carries them (resources/goldsky_client.py).

Ids travel only as GraphQL variables, and every collection query passes `first`.
"""

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from gql import gql
from graphql import DocumentNode

MAX_IDS_PER_REQUEST = 1000  # graph-node's ceiling for `first`

DISCOVERY_QUERY = gql(
    """
    query Discover {
      __type(name: "Condition") { fields { name } }
      filter: __type(name: "Condition_filter") { inputFields { name } }
      _meta { block { number timestamp } hasIndexingErrors }
    }
    """
)


class UnsupportedSubgraph(RuntimeError):
    """The endpoint has no Condition entity with a payout shape this project reads."""


@dataclass(frozen=True)
class PayoutShape:
    """Which payout fields the subgraph's Condition has (found by introspection)."""

    kind: str  # "numerators" (pnl-subgraph) or "decimals" (main subgraph)
    has_resolution_timestamp: bool

    @classmethod
    def from_fields(cls, fields: set[str]) -> "PayoutShape":
        has_time = "resolutionTimestamp" in fields
        if {"payoutNumerators", "payoutDenominator"} <= fields:
            return cls("numerators", has_time)
        if "payouts" in fields:
            return cls("decimals", has_time)
        raise UnsupportedSubgraph(
            "the subgraph's Condition has neither payoutNumerators/payoutDenominator nor "
            f"payouts; its fields are {sorted(fields)[:20]}"[:300]
        )

    def _fields(self) -> str:
        """The selected fields: from this fixed set, never from input."""
        fields = ["id"]
        fields += ["payoutNumerators", "payoutDenominator"] if self.kind == "numerators" else ["payouts"]
        fields += ["resolutionTimestamp"] if self.has_resolution_timestamp else []
        return " ".join(fields)

    def query(self) -> DocumentNode:
        """Conditions by id, for one batch."""
        return gql(
            "query Payouts($ids: [ID!]!) {"
            f" conditions(first: {MAX_IDS_PER_REQUEST}, where: {{id_in: $ids}}) {{ {self._fields()} }}"
            " _meta { block { number } } }"
        )

    def changes_query(self) -> DocumentNode:
        """One page of the conditions changed since block `$since`, in id order, as of block `$at`.

        Every page of one feed reads the same block (graph-node's time travel), so a change
        made while the pages are read is in none of them and after `$at`: the next feed sees it.
        """
        return gql(
            "query Changes($since: Int!, $after: ID!, $at: Int!) {"
            f" conditions(block: {{number: $at}}, first: {MAX_IDS_PER_REQUEST}, orderBy: id, orderDirection: asc,"
            " where: {_change_block: {number_gte: $since}, id_gt: $after})"
            f" {{ {self._fields()} }} _meta(block: {{number: $at}}) {{ block {{ number }} }} }}"
        )


def endpoint_fingerprint(url: str) -> str:
    """Names an endpoint in stored statuses without storing its URL, which may carry a key."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SubgraphInfo:
    """What discovery found: who answers, with which payout shape, how far indexed."""

    endpoint: str  # endpoint_fingerprint of the URL that answered
    shape: PayoutShape
    block_number: int
    block_timestamp: int | None
    has_indexing_errors: bool
    supports_change_block: bool  # graph-node's `_change_block` filter

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "shape": asdict(self.shape)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SubgraphInfo":
        return cls(**{**data, "shape": PayoutShape(**data["shape"])})


@dataclass
class RequestStats:
    """What it cost to get an answer: the numbers the fetch-health check reads."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0

    def add(self, other: "RequestStats") -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.rate_limited += other.rate_limited


@dataclass
class BatchAnswer:
    """The subgraph's answer to one batch, or why there is none after every retry."""

    ids: list[str]
    entities: list[dict[str, Any]] = field(default_factory=list)
    block_number: int | None = None
    error: str | None = None
    stats: RequestStats = field(default_factory=RequestStats)


@dataclass
class ChangeFeed:
    """Conditions changed since a block, by `0x` id, as of block `block_number`."""

    entities: dict[str, dict[str, Any]]
    block_number: int
    stats: RequestStats = field(default_factory=RequestStats)
    complete: bool = False
    failure: str | None = None


