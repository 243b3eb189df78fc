"""`missing_condition_ids`: the input id file, normalised and split into shards."""

from pathlib import Path

import dagster as dg
import polars as pl

from payout_assets.condition_ids import ParsedIds, read_id_file
from payout_assets.partitions import shard_partitions, single_run
from payout_assets.resources.payout_files import PayoutFiles


def shard_frame(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"condition_id": ids}, schema={"condition_id": pl.String}).with_columns(
        shard=pl.col("condition_id").str.slice(0, 1)
    )


def invalid_lines_markdown(parsed: ParsedIds) -> str:
    if not parsed.invalid_count:
        return "No invalid lines."
    rows = "\n".join(f"| {line.line_number} | `{line.preview}` |" for line in parsed.invalid)
    more = parsed.invalid_count - len(parsed.invalid)
    tail = f"\n\n…and {more} more." if more else ""
    return f"| line | starts with |\n| --- | --- |\n{rows}{tail}"


@dg.asset(
    partitions_def=shard_partitions,
    backfill_policy=single_run,
    group_name="payouts",
    kinds={"python", "parquet"},
)
def missing_condition_ids(context: dg.AssetExecutionContext, files: PayoutFiles) -> dg.MaterializeResult:
    """Condition ids that lack payout data, normalised to 64 lowercase hex, per shard."""
    parsed = read_id_file(Path(files.input_ids_path))
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
            "lines": parsed.lines,
            "valid_ids": len(parsed.ids),
            "ids_in_selected_shards": sum(per_shard.values()),
            "duplicates": parsed.duplicates,
            "blank_lines": parsed.blank,
            "invalid_lines": parsed.invalid_count,
            "invalid_line_list": dg.MetadataValue.md(invalid_lines_markdown(parsed)),
            "ids_per_shard": dg.MetadataValue.json(per_shard),
        }
    )
