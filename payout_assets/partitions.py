"""Shards: the first hex digit of a condition id, so a given id always lands in the same shard."""

import dagster as dg

SHARDS: tuple[str, ...] = tuple("0123456789abcdef")

shard_partitions = dg.StaticPartitionsDefinition(list(SHARDS))


def shard_of(condition_id: str) -> str:
    """The shard of a normalised (64 lowercase hex) condition id."""
    return condition_id[0]
