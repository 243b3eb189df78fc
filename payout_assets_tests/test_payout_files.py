"""The project's own files: what one step stores for the next, and what older files read as."""

from pathlib import Path

import polars as pl

from payout_assets.core.subgraph import PayoutShape, SubgraphInfo
from payout_assets.resources.payout_files import PayoutFiles

INFO = SubgraphInfo("endpoint-a", PayoutShape("decimals", True), 123, 1_700_000_000, False, True)


def files(tmp_path: Path) -> PayoutFiles:
    return PayoutFiles(input_ids_path=str(tmp_path / "ids.txt"), shards_dir=str(tmp_path / "shards"))


def test_the_probe_is_read_back_only_by_its_own_run_for_its_own_endpoint(tmp_path: Path):
    store = files(tmp_path)
    assert store.read_probe("run-1", "endpoint-a") is None
    store.write_probe("run-1", INFO)
    assert store.read_probe("run-1", "endpoint-a") == INFO
    assert store.read_probe("run-2", "endpoint-a") is None
    assert store.read_probe("run-1", "endpoint-b") is None


def test_a_damaged_probe_file_means_asking_again(tmp_path: Path):
    store = files(tmp_path)
    store.write_probe("run-1", INFO)
    (tmp_path / "shards" / "probe.json").write_text('{"run_id": "run-1", "subgraph": {"endpoint": 3}}')
    assert store.read_probe("run-1", "endpoint-a") is None


def test_statuses_written_before_the_endpoint_columns_read_them_as_unknown(tmp_path: Path):
    store = files(tmp_path)
    path = store.path("statuses", "a")
    path.parent.mkdir(parents=True)
    pl.DataFrame({"condition_id": ["a" * 64], "status": ["unresolved"]}).write_parquet(path)
    frame = store.read("statuses", "a")
    assert frame["endpoint"].to_list() == [None] and frame["payout_shape"].to_list() == [None]


def test_a_shards_input_count_is_its_ids_and_zero_before_any(tmp_path: Path):
    store = files(tmp_path)
    assert store.input_count("a") == 0
    store.write("ids", "a", pl.DataFrame({"condition_id": [f"a{n:063x}" for n in range(3)]}))
    assert store.input_count("a") == 3
