"""Normalising condition ids from files and queries: 64 lowercase hex, no `0x`.

An id that is not exactly 64 hex digits is never sent upstream: it is reported, with
where it came from, so the operator can fix the source.
"""

import re
from contextlib import contextmanager
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_AND_NEWLINE = b"0123456789abcdef\n"
BLOCK_LINES = 16_384  # lines parsed at a time
PREVIEW_CHARS = 24
MAX_LISTED_INVALID = 50


def normalise(raw: str) -> str | None:
    """`0xABC…`, ` abc… ` → `abc…`; None when the text is not a condition id."""
    text = raw.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    return text if _HEX64.fullmatch(text) else None


@dataclass(frozen=True)
class InvalidLine:
    line_number: int
    preview: str


@dataclass
class ParsedIds:
    """Distinct valid ids in first-seen order, and an account of every other line."""

    ids: list[str] = field(default_factory=list)  # left empty where the ids are written shard by shard
    valid: int = 0  # distinct valid ids
    lines: int = 0
    blank: int = 0
    duplicates: int = 0
    invalid_count: int = 0
    invalid: list[InvalidLine] = field(default_factory=list)  # the first MAX_LISTED_INVALID

    def add_invalid(self, line_number: int, raw: str) -> None:
        self.invalid_count += 1
        if len(self.invalid) < MAX_LISTED_INVALID:
            self.invalid.append(InvalidLine(line_number, raw.strip()[:PREVIEW_CHARS]))


def _normalised_block(block: list[str]) -> list[str] | None:
    """The ids of lines that are each exactly 64 lowercase hex digits and a newline (a file
    as this project and most exporters write it), else None. String methods over the whole
    block cost a fraction of a regex, strip and lower per line; the result is the same."""
    text = "".join(block)
    if not text.isascii() or text.encode().translate(None, _HEX_AND_NEWLINE) or set(map(len, block)) != {65}:
        return None
    ids = text.split("\n")
    if ids.pop() or len(ids) != len(block) or set(map(len, ids)) != {64}:
        return None
    return ids


def id_blocks(lines: Iterable[str], parsed: ParsedIds) -> Iterator[list[str]]:
    """The valid ids of each block of lines, normalised, repeats included; every other line
    is counted (blank or invalid) in `parsed`. Memory holds one block."""
    iterator = iter(lines)
    while block := list(islice(iterator, BLOCK_LINES)):
        ids = _normalised_block(block)
        if ids is None:
            ids = []
            for number, raw in enumerate(block, start=parsed.lines + 1):
                if not raw.strip():
                    parsed.blank += 1
                elif (condition_id := normalise(raw)) is None:
                    parsed.add_invalid(number, raw)
                else:
                    ids.append(condition_id)
        parsed.lines += len(block)
        yield ids


def parse_lines(lines: Iterable[str]) -> ParsedIds:
    """Validate and de-duplicate ids in memory; memory grows with the distinct ids, not the lines."""
    parsed = ParsedIds()
    seen: dict[str, None] = {}  # an ordered set: the distinct ids in first-seen order
    for ids in id_blocks(lines, parsed):
        before = len(seen)
        seen.update(dict.fromkeys(ids))
        parsed.duplicates += len(ids) - (len(seen) - before)
    parsed.ids = list(seen)
    parsed.valid = len(parsed.ids)
    return parsed


def read_id_file(path: Path, more: Iterable[str] = ()) -> ParsedIds:
    """Read the seed's format: one id per line; BOM, CRLF and undecodable bytes tolerated.

    `more` ids (from a query) are validated the same way, numbered after the file's lines.
    """
    with id_lines(path, more) as lines:
        return parse_lines(lines)


@contextmanager
def id_lines(path: Path, more: Iterable[str] = ()) -> Iterator[Iterator[str]]:
    """The file's lines, then `more`, read as they are consumed."""
    if not path.is_file():
        raise FileNotFoundError(
            f"input id file {path} does not exist: set PAYOUT_INPUT_IDS to a file of condition ids"
        )
    # utf-8-sig drops a BOM; universal newlines fold CRLF; bad bytes become an invalid line.
    with path.open(encoding="utf-8-sig", errors="replace") as lines:
        yield chain(lines, more)
