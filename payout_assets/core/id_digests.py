"""A set of ids' digest per shard: the number of ids and the sums of their eight 32-bit words,
computed by polars (`id_digests`) and by ClickHouse (`STORED_DIGESTS`) alike. Equal digests
mean equal sets (in any order) without bringing a table's ids to Python."""

import polars as pl

# An id's eight 32-bit words, by where they start in its hex text.
WORD_STARTS = range(0, 64, 8)
STORED_DIGESTS = "substring(condition_id, 1, 1) AS shard, count(), " + ", ".join(
    f"sum(reinterpretAsUInt32(reverse(unhex(substring(condition_id, {start + 1}, 8)))))" for start in WORD_STARTS
)

Digests = dict[str, tuple[int, ...]]


def id_digests(ids: pl.DataFrame) -> Digests:
    """Per shard, the number of ids and the sum of each of their eight 32-bit words: equal for
    the same set of ids in any order, and what STORED_DIGESTS makes ClickHouse compute."""
    words = [pl.col("condition_id").str.slice(start, 8).str.to_integer(base=16).sum().alias(f"word_{start}") for start in WORD_STARTS]
    digests = ids.group_by(pl.col("condition_id").str.slice(0, 1).alias("shard")).agg(pl.len(), *words)
    return {shard: tuple(map(int, digest)) for shard, *digest in digests.iter_rows()}
