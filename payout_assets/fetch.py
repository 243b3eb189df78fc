"""`goldsky_payouts`: every id of the selected shards fetched and given one status."""

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg
import polars as pl
from pydantic import Field

from payout_assets.chain_fallback import settle_with_chain, settled_by_source
from payout_assets.chain_times import resolution_times
from payout_assets.core.bounds import AnswerBounds
from payout_assets.fetch_plan import ShardFetch, batches, ids_to_fetch
from payout_assets.input_ids import missing_condition_ids
from payout_assets.metadata import markdown_table
from payout_assets.partitions import shard_partitions, single_run
from payout_assets.recheck import recheck_by_changes
from payout_assets.resources.chain import ChainResource
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.core.subgraph import BatchAnswer, SubgraphInfo
from payout_assets.resources.goldsky_client import GoldskyClient
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.resources.run_lock import RunLock
from payout_assets.core.statuses import RESOLVED, STATUSES, classify, count_statuses, to_frame

PROGRESS_EVERY_SECONDS = 5.0


class FetchConfig(dg.Config):
    checked_before: str | None = Field(
        default=None,
        description="ISO 8601 time (the daily sensor sets it to its tick's cut-off): unresolved, not_found "
        "and malformed ids this endpoint answered at or after it are not asked again. Unset: every id "
        "without a resolved status is asked. Resolved ids are never fetched again.",
    )


@dataclass
class Progress:
    total_ids: int
    started: float
    done_ids: int = 0
    resolved: int = 0
    last_logged: float = 0.0

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.done_ids / elapsed if elapsed else 0.0
        eta = (self.total_ids - self.done_ids) / rate if rate else float("inf")
        return (
            f"fetched {self.done_ids}/{self.total_ids} ids, {self.resolved} resolved, "
            f"{rate:.0f} ids/s, ETA {eta:.0f} s"
        )


async def _fetch(
    client: GoldskyClient,
    shards: dict[str, ShardFetch],
    plan: dict[str, list[str]],
    files: PayoutFiles,
    context: dg.AssetExecutionContext,
) -> SubgraphInfo:
    log, started = context.log, time.monotonic()
    async with client:
        # This run's pre-flight probe already asked: its answer saves a round trip before the first window.
        info = files.read_probe(context.run_id, client.endpoint) or await client.discover()
        if info.has_indexing_errors:
            log.warning("the subgraph reports indexing errors; it may withhold data")
        plan = await recheck_by_changes(client, info, shards, plan, log)
        for shard, ids in plan.items():
            shards[shard].pending = len(batches(ids))
            if not ids and shards[shard].answers:  # the change feed answered for all of this shard
                shards[shard].write(files)
        progress = Progress(sum(len(ids) for ids in plan.values()), started=started)
        query = info.shape.query()
        tasks = [
            asyncio.create_task(_fetch_one(client, query, shard, batch))
            for shard, ids in plan.items()
            for batch in batches(ids)
        ]
        for finished in asyncio.as_completed(tasks):
            shard, answer = await finished
            progress.resolved += _record(shards[shard], answer, info, files, client.bounds)
            shards[shard].seconds = time.monotonic() - progress.started
            progress.done_ids += len(answer.ids)
            if time.monotonic() - progress.last_logged >= PROGRESS_EVERY_SECONDS or progress.done_ids == progress.total_ids:
                progress.last_logged = time.monotonic()
                log.info(progress.line())
    return info


async def _fetch_one(client: GoldskyClient, query, shard: str, batch: list[str]) -> tuple[str, BatchAnswer]:
    return shard, await client.fetch_batch(query, batch)


def _record(fetch: ShardFetch, answer: BatchAnswer, info: SubgraphInfo, files: PayoutFiles, bounds: AnswerBounds) -> int:
    """Fold one answer into its shard; returns how many of its ids resolved."""
    rows, unrequested = classify(answer, info.shape, datetime.now(timezone.utc), bounds)
    fetch.answers.append(to_frame(rows, info))
    fetch.stats.add(answer.stats)
    fetch.unrequested += unrequested
    fetch.ids_fetched += len(answer.ids)
    fetch.pending -= 1
    if fetch.pending == 0:
        fetch.write(files)
    return sum(row["status"] == RESOLVED for row in rows)


@dg.asset(
    partitions_def=shard_partitions,
    backfill_policy=single_run,
    deps=[missing_condition_ids],
    group_name="payouts",
    kinds={"graphql", "parquet"},
    pool="goldsky",
)
def goldsky_payouts(
    context: dg.AssetExecutionContext,
    config: FetchConfig,
    goldsky: GoldskyResource,
    files: PayoutFiles,
    run_lock: RunLock,
    chain: ChainResource,
) -> dg.MaterializeResult:
    """Payout vectors from the Goldsky subgraph: one status per input id, Parquet per shard."""
    started = time.monotonic()
    now = datetime.now(timezone.utc)
    checked_before = datetime.fromisoformat(config.checked_before) if config.checked_before else now
    checked_before = checked_before if checked_before.tzinfo else checked_before.replace(tzinfo=timezone.utc)
    shards: dict[str, ShardFetch] = {}
    plan: dict[str, list[str]] = {}
    for shard in context.partition_keys:
        ids = files.read("ids", shard)
        previous = files.read("statuses", shard)  # ids that left the input keep theirs
        plan[shard] = ids_to_fetch(ids, previous, checked_before, goldsky.fingerprint)
        shards[shard] = ShardFetch(shard, previous)
        if not plan[shard]:  # nothing to ask: keep what we know
            files.write("statuses", shard, previous)
    info = asyncio.run(_fetch(goldsky.client(context.log), shards, plan, files, context)) if any(plan.values()) else None
    from_chain = {}
    if chain.enabled:
        from_chain = settle_with_chain(chain, files, list(shards), info, now, context.log)
        from_chain |= resolution_times(chain, files, list(shards), now, context.log)
    from_chain["settled_by_source"] = dg.MetadataValue.json(settled_by_source(files, list(shards), now))

    per_shard = []
    for shard, fetch in shards.items():
        counts = count_statuses(files.input_statuses(shard))
        stats = {
            "ids_fetched": fetch.ids_fetched,
            "requests": fetch.stats.requests,
            "retries": fetch.stats.retries,
            "rate_limited": fetch.stats.rate_limited,
            "failed_ids": counts["failed"],
            "unrequested_entities": fetch.unrequested,
            "seconds": round(fetch.seconds, 3),
        }
        files.write("fetch_stats", shard, pl.DataFrame([{**stats, "run_id": context.run_id}]))
        per_shard.append({"shard": shard, **{s: counts[s] for s in STATUSES}, **stats})
    return dg.MaterializeResult(metadata={**_metadata(per_shard, info, time.monotonic() - started), **from_chain})


def _metadata(per_shard: list[dict], info: SubgraphInfo | None, seconds: float) -> dict:
    totals = pl.DataFrame(per_shard).drop("shard", "seconds").sum().row(0, named=True)
    metadata = {**{key: int(value) for key, value in totals.items()}, "seconds": round(seconds, 2)}
    metadata["ids"] = sum(int(totals[s]) for s in STATUSES)
    metadata["per_shard"] = markdown_table(per_shard, ["shard", *STATUSES, "requests", "retries", "rate_limited"])
    if info is not None:
        metadata["subgraph_block"] = info.block_number
        metadata["payout_shape"] = info.shape.kind
        if info.block_timestamp:
            metadata["subgraph_lag_seconds"] = max(0, int(time.time()) - info.block_timestamp)
    return metadata
