"""Shards read together: consecutive ones while their rows fit, and the id range a group covers."""

from payout_assets.partitions import AFTER_EVERY_ID, id_range, shard_groups


def test_consecutive_shards_are_grouped_while_their_rows_fit():
    sizes = {"0": 3, "1": 3, "2": 5, "3": 9, "5": 1, "6": 1, "f": 2}
    groups = list(shard_groups(sizes, sizes.__getitem__, 8))
    # "3" is bigger than a group alone; "5" does not follow "3"; "f" does not follow "6".
    assert groups == [["0", "1"], ["2"], ["3"], ["5", "6"], ["f"]]
    assert list(shard_groups(sizes, sizes.__getitem__, 9)) == [["0", "1"], ["2"], ["3"], ["5", "6"], ["f"]]
    assert list(shard_groups(["0", "1"], {"0": 4, "1": 4}.__getitem__, 8)) == [["0", "1"]]  # exactly full
    assert list(shard_groups(["0", "1"], {"0": 4, "1": 5}.__getitem__, 8)) == [["0"], ["1"]]  # one row over


def test_an_id_range_covers_its_shards_and_no_other():
    assert id_range(["0", "1"]) == {"low": "0", "high": "2"}
    assert id_range(["9"]) == {"low": "9", "high": "a"}
    assert id_range(["e", "f"]) == {"low": "e", "high": AFTER_EVERY_ID}
    assert "f" * 64 < AFTER_EVERY_ID and "e" < "e" + "f" * 63 < "f"
