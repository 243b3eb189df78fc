"""Input ids from PAYOUT_INPUT_SQL, whatever type the users' id column has (issue 11), and the input's counts
the checks reuse (issue 14)."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payout_assets.core.condition_ids import normalise
from payout_assets.input_ids import SUMMARY_FILE, id_text, input_counts, read_input_ids, split_input_ids, write_summary
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets_tests.support import random_ids

IDS = random_ids(4, seed=11)


@pytest.mark.parametrize(
    "column_type, values",
    [
        ("FixedString(64)", IDS),  # as `condition_id_norm` in market_resolutions_final
        ("FixedString(66)", [f"0x{cid.upper()}" for cid in IDS]),
        ("String", [f"0x{cid}" for cid in IDS]),
        ("Nullable(FixedString(64))", IDS),
    ],
)
def test_query_ids_of_every_id_column_type_are_accepted(tmp_path: Path, column_type: str, values: list[str]):
    (tmp_path / "ids.txt").write_text("")
    clickhouse = ClickHouseResource(url=f"chdb://{tmp_path / 'chdb'}")
    with clickhouse.get_client() as client:
        client.command(f"CREATE TABLE default.trades (market {column_type}) ENGINE = MergeTree ORDER BY tuple()")
        client.insert("default.trades", [[v] for v in values], column_names=["market"])
    files = PayoutFiles(input_ids_path=str(tmp_path / "ids.txt"), shards_dir=str(tmp_path), input_sql="SELECT market FROM default.trades")
    parsed = read_input_ids(files, clickhouse)
    assert sorted(parsed.ids) == sorted(IDS) and parsed.invalid_count == 0


def test_raw_bytes32_ids_become_hex(tmp_path: Path):
    (tmp_path / "ids.txt").write_text("")
    clickhouse = ClickHouseResource(url=f"chdb://{tmp_path / 'chdb'}")
    files = PayoutFiles(
        input_ids_path=str(tmp_path / "ids.txt"),
        shards_dir=str(tmp_path),
        input_sql=f"SELECT CAST(unhex(id), 'FixedString(32)') FROM (SELECT arrayJoin({IDS!r}) AS id)",
    )
    assert sorted(read_input_ids(files, clickhouse).ids) == sorted(IDS)


@pytest.mark.parametrize("value", [b"\xff" * 5, b"\x00" * 3 + b"\xfe", "not-an-id", 12])
def test_other_values_stay_invalid_lines(value):
    text = id_text(value)
    assert isinstance(text, str) and len(text) != 64


@given(st.binary(max_size=80) | st.text(max_size=80) | st.integers() | st.none())
def test_any_queried_value_becomes_text_without_crashing(value):
    assert isinstance(id_text(value), str)


@given(st.binary(min_size=32, max_size=32), st.integers(min_value=0, max_value=4), st.booleans(), st.booleans())
def test_any_id_in_any_fixed_string_form_normalises_to_itself(raw: bytes, padding: int, prefixed: bool, upper: bool):
    condition_id = raw.hex()
    text = ("0x" if prefixed else "") + (condition_id.upper() if upper else condition_id)
    assert normalise(id_text(text.encode() + b"\0" * padding)) == condition_id  # FixedString(64..)
    assert normalise(id_text(raw)) == condition_id  # FixedString(32): the raw bytes32


def test_the_checks_reuse_the_input_counts_only_while_the_input_is_unchanged(tmp_path: Path):
    id_file = tmp_path / "ids.txt"
    id_file.write_text("\n".join([*IDS, "not-an-id"]) + "\n")
    files = PayoutFiles(input_ids_path=str(id_file), shards_dir=str(tmp_path / "shards"))
    parsed = split_input_ids(files, None)
    assert (parsed.valid, parsed.invalid_count) == (len(IDS), 1)
    write_summary(files, parsed)

    summary_path = tmp_path / "shards" / SUMMARY_FILE
    summary = json.loads(summary_path.read_text())
    summary_path.write_text(json.dumps({**summary, "invalid_lines": 99}))
    assert input_counts(files, None) == (len(IDS), 99)  # read from the summary, not counted again

    with id_file.open("a") as more:
        more.write("0xZZ\n")
    assert input_counts(files, None) == (len(IDS), 2)  # the input changed: counted again
