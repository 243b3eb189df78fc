"""`missing_condition_ids`: the input id file, normalised and split into shards, and its pre-flight checks."""

import functools
import json
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import polars as pl

from payout_assets.checks import preflight
from payout_assets.checks.outcome import logged
from payout_assets.core.condition_ids import ParsedIds, id_blocks, id_lines, read_id_file
from payout_assets.metadata import markdown_table
from payout_assets.partitions import SHARDS, shard_partitions, single_run
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.resources.run_lock import RunLock
from payout_assets.resources.payout_files import IDS_SCHEMA, PayoutFiles
from payout_assets.core.json_file import write_json


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


SUMMARY_FILE = "input_summary.json"


def _queried_ids(files: PayoutFiles, clickhouse: ClickHouseResource | None) -> Iterator[str]:
    """PAYOUT_INPUT_SQL's ids as text, block by block, when it is set and ClickHouse is given."""
    if not files.input_sql or clickhouse is None:
        return
    with clickhouse.get_client() as client, client.query_row_block_stream(files.input_sql) as blocks:
        for block in blocks:
            yield from (id_text(row[0]) for row in block)


def read_input_ids(files: PayoutFiles, clickhouse: ClickHouseResource | None) -> ParsedIds:
    """The input file's ids, then those of PAYOUT_INPUT_SQL, in memory (for the sensor and scripts)."""
    return read_id_file(Path(files.input_ids_path), _queried_ids(files, clickhouse))


def split_input_ids(
    files: PayoutFiles,
    clickhouse: ClickHouseResource | None,
    write: Callable[[str, pl.DataFrame], None] | None = None,
    on_valid_id: Callable[[], None] | None = None,
) -> ParsedIds:
    """The input's ids, shard by shard, without holding them all: each block of lines goes to a
    spill file per shard, then each shard is de-duplicated (first-seen order) and handed to
    `write`. `on_valid_id` is called after each block that holds a valid id. Returns the
    counts; its `ids` stay empty."""
    parsed = ParsedIds()
    with tempfile.TemporaryDirectory(prefix="payout-input-") as spill, id_lines(
        Path(files.input_ids_path), _queried_ids(files, clickhouse)
    ) as lines:
        spilled = {shard: Path(spill) / shard for shard in SHARDS}
        for ids in id_blocks(lines, parsed):
            if ids and on_valid_id is not None:
                on_valid_id()
            by_shard: dict[str, list[str]] = {}
            for condition_id in ids:
                by_shard.setdefault(condition_id[0], []).append(condition_id)
            for shard, shard_ids in by_shard.items():
                with spilled[shard].open("a") as out:
                    out.write("\n".join(shard_ids) + "\n")
        for shard, path in spilled.items():
            ids = pl.read_csv(path, has_header=False, schema=IDS_SCHEMA) if path.exists() else pl.DataFrame(schema=IDS_SCHEMA)
            distinct = ids.unique(maintain_order=True)
            parsed.duplicates += ids.height - distinct.height
            parsed.valid += distinct.height
            if write is not None:
                write(shard, distinct)
    return parsed


def _input_stamp(files: PayoutFiles) -> dict:
    """What identifies the input as read: the file's path, size and modification time, and the query."""
    stat = Path(files.input_ids_path).stat()
    return {"input_file": files.input_ids_path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "input_query": files.input_sql}


def write_summary(files: PayoutFiles, parsed: ParsedIds) -> None:
    """The input's counts beside its shards, for the checks that report them."""
    summary = {"stamp": _input_stamp(files), "valid_ids": parsed.valid, "invalid_lines": parsed.invalid_count}
    write_json(Path(files.shards_dir) / SUMMARY_FILE, summary)


def input_counts(files: PayoutFiles, clickhouse: ClickHouseResource | None) -> tuple[int, int]:
    """Valid ids and invalid lines of the input: as missing_condition_ids counted them while the input
    is unchanged since (the summary beside the shards), else counted again."""
    try:
        summary = json.loads((Path(files.shards_dir) / SUMMARY_FILE).read_text())
        if summary["stamp"] == _input_stamp(files):
            return summary["valid_ids"], summary["invalid_lines"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    parsed = split_input_ids(files, clickhouse)
    return parsed.valid, parsed.invalid_count


@dg.asset(
    partitions_def=shard_partitions,
    backfill_policy=single_run,
    group_name="payouts",
    kinds={"python", "parquet"},
    check_specs=preflight.SPECS,
)
def missing_condition_ids(
    context: dg.AssetExecutionContext,
    config: preflight.PreflightConfig,
    files: PayoutFiles,
    clickhouse: ClickHouseResource,
    goldsky: GoldskyResource,
    run_lock: RunLock,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Condition ids that lack payout data, normalised to 64 lowercase hex, per shard; then the
    pre-flight checks: ClickHouse is read and the endpoint probed (with the input's first valid
    id) from worker threads while the input is split."""
    selected, per_shard = set(context.partition_keys), {}

    def write(shard: str, ids: pl.DataFrame) -> None:
        if shard in selected:
            files.write("ids", shard, ids)
            per_shard[shard] = ids.height

    with ThreadPoolExecutor(max_workers=2) as pool:
        probe = preflight.EndpointProbe(pool, goldsky, files, config, context.run.run_id, context.log)
        read_table = functools.cache(functools.partial(pool.submit, preflight.clickhouse_ready, clickhouse))

        def on_valid_id() -> None:
            probe.start()  # returns once the probe has left: opening chDB beside it held it back 0.13-0.35 s
            read_table()

        parsed = split_input_ids(files, clickhouse, write, on_valid_id=on_valid_id)
        table = read_table()  # also for an input without a valid id
        write_summary(files, parsed)
        if parsed.invalid_count:
            context.log.warning(f"{parsed.invalid_count} invalid lines in {files.input_ids_path} were skipped")
        yield dg.MaterializeResult(
            metadata={
                "input_file": files.input_ids_path,
                "input_query": files.input_sql or "none",
                "lines": parsed.lines,
                "valid_ids": parsed.valid,
                "ids_in_selected_shards": sum(per_shard.values()),
                "duplicates": parsed.duplicates,
                "blank_lines": parsed.blank,
                "invalid_lines": parsed.invalid_count,
                "invalid_line_list": invalid_lines_markdown(parsed),
                "ids_per_shard": dg.MetadataValue.json(per_shard),
            }
        )
        yield from logged(context, preflight.preflight_results(parsed, files, goldsky, clickhouse, table, probe))
