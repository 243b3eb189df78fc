"""`resolutions_external_ingest`: resolved payouts loaded into ClickHouse, idempotently."""

import time

import dagster as dg
import polars as pl

from payout_assets.fetch import goldsky_payouts
from payout_assets.partitions import shard_partitions, single_run
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.run_lock import RunLock
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import RESOLVED, SOURCE_OF_ROW, SUBGRAPH_SOURCE
from payout_assets.target_table import TABLE, shape_differences

SOURCE = SUBGRAPH_SOURCE


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
    layout = clickhouse.layout
    with clickhouse.get_client() as client:
        for statement in layout.create_statements():  # IF NOT EXISTS: a table already there is checked, never altered
            client.command(statement)
        if differences := shape_differences(client, layout):
            raise dg.Failure(
                description=f"{TABLE} differs from the shape this load writes; nothing was inserted and the "
                f"table was left as it is: {'; '.join(differences)}",
                metadata={"table": TABLE, "differences": dg.MetadataValue.json(differences)},
            )
        in_shards = "WHERE substring(condition_id, 1, 1) IN {shards:Array(String)}"
        loaded = pl.from_arrow(
            client.query_arrow(f"SELECT condition_id, version FROM {layout.reads} FINAL {in_shards}", parameters={"shards": shards})
        )
        new_rows = rows_to_load(statuses, loaded.cast({"condition_id": pl.String, "version": pl.UInt64}))
        if new_rows.height:
            client.insert_arrow(layout.reads, new_rows.to_arrow(), settings=layout.insert_settings)
        total = client.query(
            f"SELECT count() FROM {layout.reads} FINAL {in_shards}", parameters={"shards": shards}
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
