"""`resolutions_external_ingest`: resolved payouts loaded into ClickHouse, idempotently."""

import re
import time

import dagster as dg
import polars as pl
from clickhouse_connect.driver.client import Client

from payout_assets.fetch import goldsky_payouts
from payout_assets.partitions import shard_partitions, single_run
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.run_lock import RunLock
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import RESOLVED, SOURCE_OF_ROW, SUBGRAPH_SOURCE

TABLE = "default.resolutions_external_ingest"
SOURCE = SUBGRAPH_SOURCE

# Seed columns and types first (downstream P&L queries read them), then provenance.
TABLE_COLUMNS = {
    "condition_id": "String",
    "payout_numerators": "Array(UInt32)",
    "payout_denominator": "UInt32",
    "winning_index": "Int32",
    "resolved_at": "DateTime",
    "source": "LowCardinality(String)",
    "resolved_at_source": "LowCardinality(String)",
    "fetched_at": "DateTime",
    "block_number": "UInt64",
    "version": "UInt64",
}

SORT_KEY = "condition_id"
VERSION_COLUMN = "version"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    + ", ".join(f"{name} {kind}" for name, kind in TABLE_COLUMNS.items())
    + f") ENGINE = ReplacingMergeTree({VERSION_COLUMN}) ORDER BY {SORT_KEY}"
)
# ClickHouse Cloud turns ReplacingMergeTree into SharedReplacingMergeTree, clusters use
# ReplicatedReplacingMergeTree: any of them keeps the newest version per sort key.
_REPLACING_FAMILY = re.compile(r"(Shared|Replicated)?ReplacingMergeTree")
_ENGINE_ARGUMENT = re.compile(r"\s*('(?:[^'\\]|\\.)*'|[^,()']+)\s*(?:,|$)")


def replacing_version(engine_full: str) -> str | None:
    """The version column of a ReplacingMergeTree-family engine, skipping the Replicated/Shared
    engines' quoted ZooKeeper path and replica name; None when it has no version column."""
    arguments = re.match(r"\w+\(((?:'(?:[^'\\]|\\.)*'|[^()'])*)\)", engine_full)
    if arguments is None:
        return None
    unquoted = [a.strip() for a in _ENGINE_ARGUMENT.findall(arguments.group(1)) if not a.startswith("'")]
    return unquoted[0] if unquoted else None


def shape_differences(client: Client) -> list[str]:
    """Every way the existing target table differs from the shape the load writes.

    The pre-flight check and the load both ask this; a difference stops them, since we
    never alter or drop a user's table and never write rows it would convert or collapse.
    """
    params = dict(zip(("db", "name"), TABLE.split(".")))
    actual = dict(client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {name:String}", parameters=params
    ).result_rows)
    differences = [
        f"column {name} is {actual[name]}, expected {kind}" if name in actual else f"column {name} ({kind}) is missing"
        for name, kind in TABLE_COLUMNS.items()
        if actual.get(name) != kind
    ]
    differences += [f"column {name} ({kind}) is not one of ours" for name, kind in actual.items() if name not in TABLE_COLUMNS]
    [(engine, engine_full, sorting_key)] = client.query(
        "SELECT engine, engine_full, sorting_key FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters=params,
    ).result_rows
    expected_engine = f"ReplacingMergeTree({VERSION_COLUMN}) or its Shared/Replicated variant"
    if not _REPLACING_FAMILY.fullmatch(engine):
        differences.append(f"engine is {engine}, expected {expected_engine}")
    elif (version := replacing_version(engine_full)) != VERSION_COLUMN:
        differences.append(f"engine {engine} has version column {version or 'none'}, expected {expected_engine}")
    if sorting_key != SORT_KEY:
        differences.append(f"sort key is ({sorting_key or 'tuple()'}), expected ({SORT_KEY})")
    return differences


def rows_to_load(statuses: pl.DataFrame, loaded: pl.DataFrame) -> pl.DataFrame:
    """Resolved rows the table lacks, or holds in an older version: a re-run inserts nothing."""
    resolved = statuses.filter(pl.col("status") == RESOLVED).select(
        "condition_id",
        "payout_numerators",
        "payout_denominator",
        "winning_index",
        pl.col("resolved_at").dt.replace_time_zone(None),
        SOURCE_OF_ROW.alias("source"),
        "resolved_at_source",
        pl.col("fetched_at").dt.replace_time_zone(None),
        "block_number",
        pl.col("fetched_at").dt.epoch("us").cast(pl.UInt64).alias("version"),
    )
    current = resolved.join(loaded, on=["condition_id", "version"], how="semi")
    return resolved.join(current, on="condition_id", how="anti")


@dg.asset(
    partitions_def=shard_partitions,
    backfill_policy=single_run,
    deps=[goldsky_payouts],
    group_name="payouts",
    kinds={"clickhouse"},
    pool="clickhouse",
)
def resolutions_external_ingest(
    context: dg.AssetExecutionContext, clickhouse: ClickHouseResource, files: PayoutFiles, run_lock: RunLock
) -> dg.MaterializeResult:
    """Resolved Goldsky payouts in `default.resolutions_external_ingest` (ReplacingMergeTree)."""
    started = time.monotonic()
    shards = list(context.partition_keys)
    statuses = pl.concat([files.input_statuses(shard) for shard in shards])
    with clickhouse.get_client() as client:
        client.command(CREATE_TABLE)  # IF NOT EXISTS: a table already there is checked, never altered
        if differences := shape_differences(client):
            raise dg.Failure(
                description=f"{TABLE} differs from the shape this load writes; nothing was inserted and the "
                f"table was left as it is: {'; '.join(differences)}",
                metadata={"table": TABLE, "differences": dg.MetadataValue.json(differences)},
            )
        loaded = pl.from_arrow(
            client.query_arrow(
                f"SELECT condition_id, version FROM {TABLE} FINAL "
                "WHERE substring(condition_id, 1, 1) IN {shards:Array(String)}",
                parameters={"shards": shards},
            )
        )
        new_rows = rows_to_load(statuses, loaded.cast({"condition_id": pl.String, "version": pl.UInt64}))
        if new_rows.height:
            client.insert_arrow(TABLE, new_rows.to_arrow())
        total = client.query(
            f"SELECT count() FROM {TABLE} FINAL WHERE substring(condition_id, 1, 1) IN {{shards:Array(String)}}",
            parameters={"shards": shards},
        ).result_rows[0][0]
    context.log.info(f"inserted {new_rows.height} rows into {TABLE}; the selected shards now hold {total}")
    return dg.MaterializeResult(
        metadata={
            "table": TABLE,
            "rows_inserted": new_rows.height,
            "rows_inserted_by_source": dg.MetadataValue.json(dict(new_rows.group_by("source").len().iter_rows())),
            "rows_in_selected_shards": total,
            "resolved_in_parquet": statuses.filter(pl.col("status") == RESOLVED).height,
            "clickhouse": clickhouse.display_url,
            "seconds": round(time.monotonic() - started, 2),
        }
    )
