"""Shards: the first hex digit of a condition id, so a given id always lands in the same shard."""

import warnings

import dagster as dg

SHARDS: tuple[str, ...] = tuple("0123456789abcdef")

shard_partitions = dg.StaticPartitionsDefinition(list(SHARDS))

# The tags with which a run covers a contiguous range of shards (`--partition-range first...last`).
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")

# Every partitioned asset runs a backfill of any set of shards as one run: one process,
# one rate limiter. Dagster flags the parameter as beta on every import; the operator
# cannot act on that, so it is not shown.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
single_run = dg.BackfillPolicy.single_run()
