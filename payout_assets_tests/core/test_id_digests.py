"""The ids' digest per shard is the same whether polars or ClickHouse computes it."""

from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from payout_assets.core.id_digests import STORED_DIGESTS, id_digests
from payout_assets.resources.clickhouse import ClickHouseResource


def test_id_digests_are_what_clickhouse_computes(tmp_path: Path):
    """polars and ClickHouse read an id's words alike, and the digest ignores the order."""
    sql = f"SELECT {STORED_DIGESTS} FROM (SELECT arrayJoin({{ids:Array(String)}}) AS condition_id) GROUP BY shard"
    with ClickHouseResource(url=f"chdb://{tmp_path / 'chdb'}").get_client() as client:

        @given(st.lists(st.text("0123456789abcdef", min_size=64, max_size=64), unique=True, max_size=40))
        @settings(max_examples=60, deadline=None)
        def digests_agree(ids: list[str]) -> None:
            stored = client.query(sql, parameters={"ids": ids}).result_rows
            frame = pl.DataFrame({"condition_id": ids[::-1]}, schema={"condition_id": pl.String})
            assert id_digests(frame) == {shard: tuple(digest) for shard, *digest in stored}

        digests_agree()
