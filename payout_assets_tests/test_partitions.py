"""Shards read together: consecutive ones while their rows fit, and the id range a group covers."""

import polars as pl

from payout_assets.partitions import AFTER_EVERY_ID, id_range, shard_groups


def grouped(sizes: dict[str, int], max_rows: int) -> list[tuple[list[str], int]]:
    """(group, rows read) per group."""
    def read(shard: str) -> pl.DataFrame:
        return pl.DataFrame({"n": list(range(sizes[shard]))})
    return [(group, rows.height) for group, rows in shard_groups(sizes, sizes.__getitem__, read, max_rows)]


def test_consecutive_shards_are_grouped_while_their_rows_fit():
    sizes = {"0": 3, "1": 3, "2": 5, "3": 9, "5": 1, "6": 1, "f": 2}
    # "3" is bigger than a group alone; "5" does not follow "3"; "f" does not follow "6".
    assert grouped(sizes, 8) == [(["0", "1"], 6), (["2"], 5), (["3"], 9), (["5", "6"], 2), (["f"], 2)]
    assert grouped({"0": 4, "1": 4}, 8) == [(["0", "1"], 8)]  # exactly full
    assert grouped({"0": 4, "1": 5}, 8) == [(["0"], 4), (["1"], 5)]  # one row over


def test_a_group_is_read_only_once_it_is_decided():
    reads: list[str] = []
    groups = shard_groups({"0": 4, "1": 5}, {"0": 4, "1": 5}.__getitem__, lambda shard: reads.append(shard) or pl.DataFrame(), 8)
    assert next(groups)[0] == ["0"] and reads == ["0"]  # "1" is not held beside the group before it
    assert next(groups)[0] == ["1"] and reads == ["0", "1"]


def test_an_id_range_covers_its_shards_and_no_other():
    assert id_range(["0", "1"]) == {"low": "0", "high": "2"}
    assert id_range(["9"]) == {"low": "9", "high": "a"}
    assert id_range(["e", "f"]) == {"low": "e", "high": AFTER_EVERY_ID}
    assert "f" * 64 < AFTER_EVERY_ID and "e" < "e" + "f" * 63 < "f"
