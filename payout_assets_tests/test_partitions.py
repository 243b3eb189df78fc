"""Shards read together: consecutive ones while their rows fit, and the id range a group covers."""

import polars as pl

from payout_assets.partitions import AFTER_EVERY_ID, id_range, shard_groups


def frame(rows: int) -> pl.DataFrame:
    return pl.DataFrame({"n": list(range(rows))})


def test_consecutive_shards_are_grouped_while_their_rows_fit():
    sizes = {"0": 3, "1": 3, "2": 5, "3": 9, "5": 1, "6": 1, "f": 2}
    groups = [(group, rows.height) for group, rows in shard_groups(sizes, lambda shard: frame(sizes[shard]), 8)]
    # "3" is bigger than a group alone; "5" does not follow "3"; "f" does not follow "6".
    assert groups == [(["0", "1"], 6), (["2"], 5), (["3"], 9), (["5", "6"], 2), (["f"], 2)]


def test_an_id_range_covers_its_shards_and_no_other():
    assert id_range(["0", "1"]) == {"low": "0", "high": "2"}
    assert id_range(["9"]) == {"low": "9", "high": "a"}
    assert id_range(["e", "f"]) == {"low": "e", "high": AFTER_EVERY_ID}
    assert "f" * 64 < AFTER_EVERY_ID and "e" < "e" + "f" * 63 < "f"
