"""A daily sensor: new ids and ids due for a re-check become one run over the shards with work.

It reads only the input file and the shard Parquet files: no upstream request, and never
the embedded chDB directory, which a running backfill may hold.
"""

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

import dagster as dg
import polars as pl

from payout_assets.fetch import goldsky_payouts
from payout_assets.fetch_plan import ids_to_fetch
from payout_assets.input_ids import missing_condition_ids, read_input_ids, shard_frame
from payout_assets.load import resolutions_external_ingest
from payout_assets.partitions import SHARDS
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.payout_files import PayoutFiles

DAY_SECONDS = 24 * 3600
INTERVAL_SECONDS = int(os.environ.get("PAYOUT_SENSOR_INTERVAL_SECONDS", DAY_SECONDS))
RECHECK_HOURS = float(os.environ.get("PAYOUT_RECHECK_HOURS", 24))
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def work_per_shard(files: PayoutFiles, clickhouse: ClickHouseResource, checked_before: datetime) -> dict[str, list[str]]:
    """Per shard, the input ids with no status yet and the unsettled ids last checked before the cut-off.

    PAYOUT_INPUT_SQL is asked only of a ClickHouse server: an embedded chDB directory may be
    held by a running backfill, and the next run reads the query's ids itself anyway.
    """
    ids = shard_frame(read_input_ids(files, None if clickhouse.is_embedded else clickhouse).ids)
    work = {}
    for shard in SHARDS:
        pending = ids_to_fetch(
            ids.filter(pl.col("shard") == shard).select("condition_id"), files.read("statuses", shard), checked_before
        )
        if pending:
            work[shard] = pending
    return work


def work_digest(work: dict[str, list[str]]) -> str:
    return hashlib.sha256(json.dumps(work, sort_keys=True).encode()).hexdigest()[:16]


def run_request(work: dict[str, list[str]], run_key: str) -> dg.RunRequest:
    """One single-run backfill over the contiguous range that covers every shard with work."""
    first, last = min(work), max(work)
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[missing_condition_ids.key, goldsky_payouts.key, resolutions_external_ingest.key],
        tags=dict(zip(RANGE_TAGS, (first, last))),
        # The run fetches exactly what this tick saw: ids checked within the interval are skipped.
        run_config={"ops": {"goldsky_payouts": {"config": {"recheck_after_hours": RECHECK_HOURS}}}},
    )


@dg.sensor(
    name="new_and_unresolved_payouts",
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Daily: finds condition ids added to the input since the last run and ids still unresolved, "
        f"not found, malformed or failed after {RECHECK_HOURS:g} h, and launches one run over the shards "
        "that have them. Resolved ids are never fetched again."
    ),
)
def new_and_unresolved_payouts(
    context: dg.SensorEvaluationContext, files: PayoutFiles, clickhouse: ClickHouseResource
) -> dg.SensorResult | dg.SkipReason:
    now = datetime.now(timezone.utc)
    work = work_per_shard(files, clickhouse, now - timedelta(hours=RECHECK_HOURS))
    if not work:
        return dg.SkipReason("every input id is resolved or was checked within the re-check interval")
    # Same work on the same day: already requested. A new day retries work a failed run left.
    run_key = f"payouts-{now:%Y-%m-%d}-{work_digest(work)}"
    if context.cursor == run_key:
        return dg.SkipReason(f"the same {sum(map(len, work.values()))} ids were already requested today ({run_key})")
    summary = ", ".join(f"{shard}: {len(ids)}" for shard, ids in sorted(work.items()))
    context.log.info(f"ids to fetch per shard: {summary}")
    return dg.SensorResult(run_requests=[run_request(work, run_key)], cursor=run_key)
