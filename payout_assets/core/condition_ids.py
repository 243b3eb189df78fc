"""Normalising condition ids from files and queries: 64 lowercase hex, no `0x`.

An id that is not exactly 64 hex digits is never sent upstream: it is reported, with
where it came from, so the operator can fix the source.
"""

import re
from collections.abc import Iterable
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

    ids: list[str] = field(default_factory=list)
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


def parse_lines(lines: Iterable[str]) -> ParsedIds:
    """Validate and de-duplicate ids; memory grows with the distinct ids, not the lines."""
    parsed = ParsedIds()
    seen: dict[str, None] = {}  # an ordered set: the distinct ids in first-seen order
    iterator = iter(lines)
    while block := list(islice(iterator, BLOCK_LINES)):
        ids = _normalised_block(block)
        if ids is not None:
            before = len(seen)
            seen.update(dict.fromkeys(ids))
            parsed.duplicates += len(ids) - (len(seen) - before)
            parsed.lines += len(block)
            continue
        for raw in block:
            parsed.lines += 1
            if not raw.strip():
                parsed.blank += 1
            elif (condition_id := normalise(raw)) is None:
                parsed.add_invalid(parsed.lines, raw)
            elif condition_id in seen:
                parsed.duplicates += 1
            else:
                seen[condition_id] = None
    parsed.ids = list(seen)
    return parsed


def read_id_file(path: Path, more: Iterable[str] = ()) -> ParsedIds:
    """Read the seed's format: one id per line; BOM, CRLF and undecodable bytes tolerated.

    `more` ids (from a query) are validated the same way, numbered after the file's lines.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"input id file {path} does not exist: set PAYOUT_INPUT_IDS to a file of condition ids"
        )
    # utf-8-sig drops a BOM; universal newlines fold CRLF; bad bytes become an invalid line.
    with path.open(encoding="utf-8-sig", errors="replace") as lines:
        return parse_lines(chain(lines, more))
