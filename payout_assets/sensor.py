"""A daily sensor: new ids and ids due for a re-check become one run over the shards with work.

It reads only the input file and the shard Parquet files: no upstream request, and never
the embedded chDB directory, which a running backfill may hold.
"""

import hashlib
import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import polars as pl

from payout_assets.fetch import goldsky_payouts
from payout_assets.fetch_plan import ids_to_fetch
from payout_assets.input_ids import missing_condition_ids, read_input_ids, shard_frame
from payout_assets.partitions import RANGE_TAGS, SHARDS
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.resources.payout_files import PayoutFiles

SENSOR_NAME = "new_and_unresolved_payouts"
TARGET = [missing_condition_ids, goldsky_payouts]  # the input, the fetch and the load
# The run a tick launches checks its ids minutes after the tick: an id counts as due when it
# was checked up to this long after (tick - re-check interval), so that the next daily tick,
# one interval later, asks it again instead of the one after.
RECHECK_GRACE = timedelta(hours=1)


def work_per_shard(
    files: PayoutFiles, clickhouse: ClickHouseResource, checked_before: datetime, endpoint: str
) -> dict[str, list[str]]:
    """Per shard, the input ids `ids_to_fetch` finds due.

    PAYOUT_INPUT_SQL is asked only of a ClickHouse server: an embedded chDB directory may be
    held by a running backfill, and the next run reads the query's ids itself anyway.
    """
    ids = shard_frame(read_input_ids(files, None if clickhouse.is_embedded else clickhouse).ids)
    work = {}
    for shard in SHARDS:
        shard_ids = ids.filter(pl.col("shard") == shard).select("condition_id")
        pending = ids_to_fetch(shard_ids, files.read("statuses", shard), checked_before, endpoint)
        if pending:
            work[shard] = pending
    return work


def work_digest(work: dict[str, list[str]]) -> str:
    return hashlib.sha256(json.dumps(work, sort_keys=True).encode()).hexdigest()[:16]


def run_request(work: dict[str, list[str]], run_key: str, checked_before: datetime) -> dg.RunRequest:
    """One single-run backfill over the contiguous range that covers every shard with work."""
    first, last = min(work), max(work)
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[key for asset in TARGET for key in asset.keys],
        tags=dict(zip(RANGE_TAGS, (first, last))),
        # The run fetches what this tick saw, however long it waits in the run queue.
        run_config={"ops": {"goldsky_payouts": {"config": {"checked_before": checked_before.isoformat()}}}},
    )


def daily_sensor(interval_seconds: int, recheck_hours: float) -> dg.SensorDefinition:
    """The sensor, ticking every `interval_seconds` and re-checking ids older than `recheck_hours`."""
    recheck = timedelta(hours=recheck_hours)

    @dg.sensor(
        name=SENSOR_NAME,
        target=TARGET,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Finds condition ids added to the input since the last run, failed ids, and ids still "
            f"unresolved, not found or malformed {recheck_hours:g} h less {RECHECK_GRACE.seconds // 3600} h after "
            "their last check (so that a daily tick asks them again every day), and launches one run over the "
            "shards that have them. Resolved ids are never fetched again."
        ),
    )
    def new_and_unresolved_payouts(
        context: dg.SensorEvaluationContext, files: PayoutFiles, clickhouse: ClickHouseResource, goldsky: GoldskyResource
    ) -> dg.SensorResult | dg.SkipReason:
        now = datetime.now(timezone.utc)
        checked_before = now - recheck + RECHECK_GRACE
        work = work_per_shard(files, clickhouse, checked_before, goldsky.fingerprint)
        if not work:
            return dg.SkipReason("every input id is resolved or was checked within the re-check interval")
        # Same work on the same day: already requested. A new day retries work a failed run left.
        run_key = f"payouts-{now:%Y-%m-%d}-{work_digest(work)}"
        if context.cursor == run_key:
            return dg.SkipReason(f"the same {sum(map(len, work.values()))} ids were already requested today ({run_key})")
        summary = ", ".join(f"{shard}: {len(ids)}" for shard, ids in sorted(work.items()))
        context.log.info(f"ids to fetch per shard: {summary}")
        return dg.SensorResult(run_requests=[run_request(work, run_key, checked_before)], cursor=run_key)

    return new_and_unresolved_payouts
