"""Metadata helpers shared by assets and checks: small tables the Dagster UI renders."""

from collections.abc import Iterable, Mapping, Sequence

import dagster as dg

MAX_LISTED = 20  # ids listed in a check's metadata; counts carry the rest


def _cell(value: object) -> str:
    """Table-safe text: a `|` or a newline from the data must not add cells or rows."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("\n", " ")


def markdown_table(rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def id_list(ids: Iterable[object]) -> dg.MetadataValue:
    """The first MAX_LISTED offending ids (or rows), for a person to look up."""
    return dg.MetadataValue.json([str(i) for i in list(ids)[:MAX_LISTED]])
