from pathlib import Path

import pytest

from payout_assets.core.condition_ids import normalise, read_id_file

ID_A = "ab" * 32
ID_B = "0" * 63 + "1"


def test_normalise_accepts_prefix_case_and_whitespace():
    assert normalise(f"  0x{ID_A.upper()}\t") == ID_A
    assert normalise(ID_B) == ID_B


@pytest.mark.parametrize(
    "raw",
    [ID_A[:-1], ID_A + "0", "0x" + ID_A[:-2] + "zz", '"}) { __typename } #' + ID_A[:30], "0X0x" + ID_A, ""],
)
def test_normalise_rejects_anything_but_64_hex(raw):
    assert normalise(raw) is None


def test_dirty_file_is_normalised_and_invalid_lines_are_reported(tmp_path: Path):
    lines = [
        ID_A,  # 1
        f"0x{ID_B}",  # 2
        "",  # 3 blank
        f"  {ID_A.upper()}  ",  # 4 duplicate after normalising
        "not-an-id",  # 5
        f"0x{ID_B}",  # 6 duplicate
        ID_A[:10] + "'; DROP TABLE x",  # 7
    ]
    path = tmp_path / "ids.txt"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode() + b"\xff\xfe" + ID_A.encode() + b"\n")

    parsed = read_id_file(path)

    assert parsed.ids == [ID_A, ID_B]
    assert parsed.lines == 8
    assert parsed.blank == 1
    assert parsed.duplicates == 2
    assert parsed.invalid_count == 3
    assert [line.line_number for line in parsed.invalid] == [5, 7, 8]
    assert parsed.invalid[0].preview == "not-an-id"
    assert len(parsed.invalid[1].preview) <= 24


def test_missing_file_names_the_path(tmp_path: Path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        read_id_file(missing)
