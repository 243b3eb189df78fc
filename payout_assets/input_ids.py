"""`missing_condition_ids`: the input id file, normalised and split into shards."""

from pathlib import Path

import dagster as dg
import polars as pl

from payout_assets.core.condition_ids import ParsedIds, read_id_file
from payout_assets.metadata import markdown_table
from payout_assets.partitions import shard_partitions, single_run
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.run_lock import RunLock
from payout_assets.resources.payout_files import PayoutFiles


def shard_frame(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"condition_id": ids}, schema={"condition_id": pl.String}).with_columns(
        shard=pl.col("condition_id").str.slice(0, 1)
    )


def invalid_lines_markdown(parsed: ParsedIds) -> dg.MetadataValue:
    if not parsed.invalid_count:
        return dg.MetadataValue.md("No invalid lines.")
    listed = len(parsed.invalid)
    rows = [{"line": line.line_number, "starts with": line.preview} for line in parsed.invalid]
    if parsed.invalid_count > listed:
        rows.append({"line": "…", "starts with": f"and {parsed.invalid_count - listed} more"})
    return markdown_table(rows, ["line", "starts with"])


def id_text(value: object) -> str:
    """A queried id as text for the id parser. FixedString arrives as NUL-padded bytes:
    32 of them (a `FixedString(32)`, too short for hex text) are a raw bytes32 and become
    its 64 hex digits; longer ones hold hex text, perhaps `0x`-prefixed, and are decoded."""
    if not isinstance(value, bytes):
        return str(value)
    if len(value) == 32:
        return value.hex()
    try:
        return value.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        return repr(value)


def read_input_ids(files: PayoutFiles, clickhouse: ClickHouseResource | None) -> ParsedIds:
    """The input file's ids, then those of PAYOUT_INPUT_SQL when it is set and ClickHouse is given."""
    queried: list[str] = []
    if files.input_sql and clickhouse is not None:
        with clickhouse.get_client() as client:
            queried = [id_text(row[0]) for row in client.query(files.input_sql).result_rows]
    return read_id_file(Path(files.input_ids_path), queried)


@dg.asset(
    partitions_def=shard_partitions,
    backfill_policy=single_run,
    group_name="payouts",
    kinds={"python", "parquet"},
)
def missing_condition_ids(
    context: dg.AssetExecutionContext, files: PayoutFiles, clickhouse: ClickHouseResource, run_lock: RunLock
) -> dg.MaterializeResult:
    """Condition ids that lack payout data, normalised to 64 lowercase hex, per shard."""
    parsed = read_input_ids(files, clickhouse)
    frame = shard_frame(parsed.ids)
    per_shard = {}
    for shard in context.partition_keys:
        shard_ids = frame.filter(pl.col("shard") == shard).select("condition_id")
        files.write("ids", shard, shard_ids)
        per_shard[shard] = shard_ids.height
    if parsed.invalid_count:
        context.log.warning(f"{parsed.invalid_count} invalid lines in {files.input_ids_path} were skipped")
    return dg.MaterializeResult(
        metadata={
            "input_file": files.input_ids_path,
            "input_query": files.input_sql or "none",
            "lines": parsed.lines,
            "valid_ids": len(parsed.ids),
            "ids_in_selected_shards": sum(per_shard.values()),
            "duplicates": parsed.duplicates,
            "blank_lines": parsed.blank,
            "invalid_lines": parsed.invalid_count,
            "invalid_line_list": invalid_lines_markdown(parsed),
            "ids_per_shard": dg.MetadataValue.json(per_shard),
        }
    )
