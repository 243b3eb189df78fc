"""`resolutions_external_ingest`: resolved payouts loaded into ClickHouse, idempotently."""

import time
from collections import Counter
from collections.abc import Callable
from functools import partial

import dagster as dg
import polars as pl
from clickhouse_connect.driver.client import Client

from payout_assets.fetch import goldsky_payouts
from payout_assets.partitions import IN_ID_RANGE, consecutive_groups, id_range, shard_partitions, single_run
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.run_lock import RunLock
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import RESOLVED, SOURCE_OF_ROW, SUBGRAPH_SOURCE
from payout_assets.target_table import TABLE, TableLayout, shape_differences

SOURCE = SUBGRAPH_SOURCE
LOAD_GROUP_ROWS = 50_000  # input ids of small shards loaded together
INSERT_ROWS = 20_000  # rows per insert: chDB's memory for one follows its rows (+63 MB at 50,000, +37 at 10,000)


# What the load reads of a shard's statuses.
LOAD_COLUMNS = ["condition_id", "status", "payout_numerators", "payout_denominator", "winning_index", "resolved_at",
                "payout_shape", "resolved_at_source", "fetched_at", "block_number"]


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
    inserted: Counter[str] = Counter()  # rows inserted, by source
    resolved = total = 0
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
        resolved_rows = partial(files.input_statuses, columns=LOAD_COLUMNS, where=pl.col("status") == RESOLVED)
        # A shard, or a few small ones, at a time: memory does not grow with the input.
        for group in consecutive_groups(context.partition_keys, files.input_count, LOAD_GROUP_ROWS):
            group_inserted, group_resolved, group_total = load_rows(client, layout, group, resolved_rows)
            inserted.update(group_inserted)
            resolved, total = resolved + group_resolved, total + group_total
    context.log.info(f"inserted {sum(inserted.values())} rows into {TABLE}; the selected shards now hold {total}")
    return dg.MaterializeResult(
        metadata={
            "table": TABLE,
            "rows_inserted": sum(inserted.values()),
            "rows_inserted_by_source": dg.MetadataValue.json(dict(inserted)),
            "rows_in_selected_shards": total,
            "resolved_in_parquet": resolved,
            "clickhouse": clickhouse.display_url,
            "seconds": round(time.monotonic() - started, 2),
        }
    )


def load_rows(
    client: Client, layout: TableLayout, group: list[str], read: Callable[[str], pl.DataFrame]
) -> tuple[Counter[str], int, int]:
    """Insert the resolved rows of the group's shards (`read`) that the table lacks; returns (rows
    inserted by source, resolved rows read, rows the id range holds now). Every query reads the
    range's ids only (the sort key's prefix). The statuses read are let go before the inserts,
    whose memory comes on top of what is held: about 10 MB less at 2,000,000 ids than holding them."""
    ids = id_range(group)
    resolved = pl.concat([read(shard) for shard in group])
    loaded = pl.from_arrow(client.query_arrow(f"SELECT condition_id, version FROM {layout.reads} FINAL WHERE {IN_ID_RANGE}", parameters=ids))
    new_rows = rows_to_load(resolved, loaded.cast({"condition_id": pl.String, "version": pl.UInt64}))
    resolved_count = resolved.height
    del resolved, loaded
    for chunk in new_rows.iter_slices(INSERT_ROWS):  # ClickHouse's memory per insert follows its rows
        client.insert_arrow(layout.reads, chunk.to_arrow(), settings=layout.insert_settings)
    [(total,)] = client.query(f"SELECT count() FROM {layout.reads} FINAL WHERE {IN_ID_RANGE}", parameters=ids).result_rows
    return Counter(dict(new_rows.group_by("source").len().iter_rows())), resolved_count, total
