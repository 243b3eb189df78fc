"""Normalising condition ids from files and queries: 64 lowercase hex, no `0x`.

An id that is not exactly 64 hex digits is never sent upstream: it is reported, with
where it came from, so the operator can fix the source.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_HEX64 = re.compile(r"[0-9a-f]{64}")
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


def parse_lines(lines: Iterable[str]) -> ParsedIds:
    """Validate and de-duplicate ids; memory grows with the distinct ids, not the lines."""
    parsed = ParsedIds()
    seen: set[str] = set()
    for parsed.lines, raw in enumerate(lines, start=1):
        if not raw.strip():
            parsed.blank += 1
            continue
        condition_id = normalise(raw)
        if condition_id is None:
            parsed.add_invalid(parsed.lines, raw)
        elif condition_id in seen:
            parsed.duplicates += 1
        else:
            seen.add(condition_id)
            parsed.ids.append(condition_id)
    return parsed


def read_id_file(path: Path) -> ParsedIds:
    """Read the seed's format: one id per line; BOM, CRLF and undecodable bytes tolerated."""
    if not path.is_file():
        raise FileNotFoundError(
            f"input id file {path} does not exist: set PAYOUT_INPUT_IDS to a file of condition ids"
        )
    # utf-8-sig drops a BOM; universal newlines fold CRLF; bad bytes become an invalid line.
    with path.open(encoding="utf-8-sig", errors="replace") as lines:
        return parse_lines(lines)
