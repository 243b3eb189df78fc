"""Shards: the first hex digit of a condition id, so a given id always lands in the same shard."""

import warnings
from collections.abc import Callable, Iterable, Iterator

import dagster as dg
import polars as pl

SHARDS: tuple[str, ...] = tuple("0123456789abcdef")
AFTER_EVERY_ID = "g"  # sorts after every hex id: the upper bound of the last id range
# The ClickHouse condition for an id range's parameters (`id_range`, `id_ranges`): a prefix of the table's sort key.
IN_ID_RANGE = "condition_id >= {low:String} AND condition_id < {high:String}"

shard_partitions = dg.StaticPartitionsDefinition(list(SHARDS))

# The tags with which a run covers a contiguous range of shards (`--partition-range first...last`).
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")

# Every partitioned asset runs a backfill of any set of shards as one run: one process,
# one rate limiter. Dagster flags the parameter as beta on every import; the operator
# cannot act on that, so it is not shown.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
single_run = dg.BackfillPolicy.single_run()


def shard_groups(
    shards: Iterable[str], size: Callable[[str], int], read: Callable[[str], pl.DataFrame], max_rows: int
) -> Iterator[tuple[list[str], pl.DataFrame]]:
    """Consecutive shards read together while their sizes add up to at most `max_rows` (a bigger
    shard alone): a small backfill costs one ClickHouse query a step, not sixteen. A group is
    decided from the sizes (a shard's input count bounds its rows) before any of it is read, so
    the next shard is never held beside the group being worked on."""
    for group in consecutive_groups(shards, size, max_rows):
        yield group, pl.concat([read(shard) for shard in group])


def consecutive_groups(shards: Iterable[str], size: Callable[[str], int], max_rows: int) -> Iterator[list[str]]:
    """Consecutive shards while their sizes add up to at most `max_rows`, a bigger shard alone."""
    group: list[str] = []
    rows = 0
    for shard in shards:
        rows_here = size(shard)
        adjacent = bool(group) and SHARDS.index(shard) == SHARDS.index(group[-1]) + 1
        if group and (not adjacent or rows + rows_here > max_rows):
            yield group
            group, rows = [], 0
        group.append(shard)
        rows += rows_here
    if group:
        yield group


def id_range(group: list[str]) -> dict[str, str]:
    """The ids of consecutive shards, as query parameters: `low` <= id < `high` (the table's order)."""
    after = SHARDS.index(group[-1]) + 1
    return {"low": group[0], "high": SHARDS[after] if after < len(SHARDS) else AFTER_EVERY_ID}
