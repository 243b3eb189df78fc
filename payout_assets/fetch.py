"""`goldsky_payouts`: every id of the selected shards fetched and given one status; the op that
also loads them (`resolutions_external_ingest`, load.py) as each shard is written."""

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

import dagster as dg
import polars as pl
from pydantic import Field

from payout_assets import load
from payout_assets.chain_fallback import settle_with_chain, settled_by_source
from payout_assets.chain_times import resolution_times
from payout_assets.checks import fetch_checks, table_checks
from payout_assets.checks.outcome import logged
from payout_assets.core.bounds import AnswerBounds
from payout_assets.fetch_plan import Part, ShardFetch, ids_to_fetch, packed_batches
from payout_assets.input_ids import missing_condition_ids
from payout_assets.metadata import markdown_table
from payout_assets.partitions import shard_partitions, single_run
from payout_assets.recheck import ANSWERED, FeedCost, read_feed, settle_from_feed
from payout_assets.resources.chain import ChainResource
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.core.subgraph import MAX_IDS_PER_REQUEST, BatchAnswer, ChangeFeed, SubgraphInfo
from payout_assets.resources.goldsky_client import GoldskyClient
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.resources.run_lock import RunLock
from payout_assets.core.statuses import RESOLVED, STATUSES, classify, to_frame

PROGRESS_EVERY_SECONDS = 5.0


class FetchConfig(dg.Config):
    checked_before: str | None = Field(
        default=None,
        description="ISO 8601 time (the daily sensor sets it to its tick's cut-off): unresolved, not_found "
        "and malformed ids this endpoint answered at or after it are not asked again. Unset: every id "
        "without a resolved status is asked. Resolved ids are never fetched again.",
    )
    min_resolved_share: float = Field(default=0.5, description="coverage_vs_input WARNs when fewer input ids than this resolved.")


@dataclass
class Progress:
    """The progress line: due PROGRESS_EVERY_SECONDS after the start and after each line (written
    when answers arrive), and at the end.

    Answers come a window at a time, so the pace so far says little early on (35 s left, after
    the first answers of a 20,000-id fetch that ended 0.2 s later; half the time left, 5 s into a
    2,000,000-id one). The ETA is the slower of that pace and the rate limit's for the ids left."""

    total_ids: int
    started: float
    seconds_per_request: float  # the rate limit's pace: its window over its requests
    done_ids: int = 0
    resolved: int = 0
    last_logged: float = field(init=False)

    def __post_init__(self) -> None:
        self.last_logged = self.started

    def due(self, now: float) -> bool:
        return now - self.last_logged >= PROGRESS_EVERY_SECONDS or self.done_ids == self.total_ids

    def line(self, now: float) -> str:
        self.last_logged = now
        left = self.total_ids - self.done_ids
        rate = self.done_ids / (now - self.started) if now > self.started else 0.0
        so_far = left / rate if rate else float("inf")
        at_the_limit = math.ceil(left / MAX_IDS_PER_REQUEST) * self.seconds_per_request
        return (
            f"fetched {self.done_ids}/{self.total_ids} ids, {self.resolved} resolved, "
            f"{rate:.0f} ids/s, ETA {max(so_far, at_the_limit) if left else 0:.0f} s"
        )


@dataclass
class FetchRun:
    """What the fetch needs besides the client: the shards to fetch, and how to plan each one
    when its turn comes (so that one shard's ids at a time are in memory, not the input's)."""

    shards: dict[str, ShardFetch]  # only shards with ids to fetch, in order
    plan: Callable[[str], tuple[pl.DataFrame, list[str]]]
    files: PayoutFiles
    written: Callable[[str], None]  # told each shard whose statuses were just written
    # Told when no request awaits an answer once answers are recorded: the rate limit holds the
    # next ones back, and work that waits for more shards (the load's groups) may run now.
    idle: Callable[[], None] = lambda: None
    total_ids: int = 0
    rechecks: bool = False  # some id to fetch was answered before: the change feed may settle it
    ahead: int = 100  # batches scheduled at most at once: enough to keep the rate limit's window full

    def finish(self, fetch: ShardFetch) -> None:
        fetch.finish(self.files)
        self.written(fetch.shard)

    def count(self, batch: list[Part]) -> None:
        """Count a batch into its shards before it is asked: `_record` writes a shard when none
        of its counted batches is left unanswered and the last one counted ends its ids."""
        for part in batch:
            fetch = self.shards[part.shard]
            fetch.pending += 1
            fetch.batched = part.last


async def _fetch(client: GoldskyClient, run: FetchRun, context: dg.AssetExecutionContext) -> SubgraphInfo:
    log = context.log
    progress = Progress(run.total_ids, time.monotonic(), client.seconds_per_request)
    async with client:
        # This run's pre-flight probe already asked: its answer saves a round trip before the first window.
        info = run.files.read_probe(context.run_id, client.endpoint) or await client.discover()
        if info.has_indexing_errors:
            log.warning("the subgraph reports indexing errors; it may withhold data")
        feed = None
        if run.rechecks:  # weigh the change feed against a plain re-check, one shard in memory at a time
            cost = FeedCost()
            for shard in run.shards:
                cost.add(*run.plan(shard), info)
            feed = await read_feed(client, info, cost, next(iter(run.shards.values())).stats, log)
        query = info.shape.query()
        scheduled: set[asyncio.Task] = set()
        for batch in packed_batches(_planned(run, feed, progress, info, client.bounds)):
            run.count(batch)
            if len(scheduled) >= run.ahead:
                scheduled = await _record_finished(scheduled, run, info, progress, client, log)
            scheduled.add(asyncio.create_task(_fetch_one(client, query, batch)))
        while scheduled:
            scheduled = await _record_finished(scheduled, run, info, progress, client, log)
    return info


def _planned(
    run: FetchRun, feed: ChangeFeed | None, progress: Progress, info: SubgraphInfo, bounds: AnswerBounds
) -> Iterator[tuple[str, list[str]]]:
    """Each shard's ids to ask, planned when the batches reach it (one shard's ids in memory at
    a time); a shard that the change feed settled entirely is written at once."""
    for shard, fetch in run.shards.items():
        fetch.previous, ids = run.plan(shard)
        if feed is not None:
            asked = len(ids)
            ids = settle_from_feed(feed, fetch, ids, info, bounds)
            progress.total_ids -= asked - len(ids)
        if not ids:
            run.finish(fetch)
        yield shard, ids


async def _record_finished(
    scheduled: set[asyncio.Task],
    run: FetchRun,
    info: SubgraphInfo,
    progress: Progress,
    client: GoldskyClient,
    log: logging.Logger,
) -> set[asyncio.Task]:
    """Wait for at least one batch to finish, fold every finished one into its shards; the rest."""
    finished, scheduled = await asyncio.wait(scheduled, return_when=asyncio.FIRST_COMPLETED)
    for task in finished:
        batch, answer = task.result()
        progress.resolved += _record(batch, answer, info, run, client.bounds, time.monotonic() - progress.started)
        progress.done_ids += len(answer.ids)
    if not client.awaiting_answers:
        run.idle()
    if progress.due(now := time.monotonic()):
        log.info(progress.line(now))
    return scheduled


async def _fetch_one(client: GoldskyClient, query, batch: list[Part]) -> tuple[list[Part], BatchAnswer]:
    return batch, await client.fetch_batch(query, [cid for part in batch for cid in part.ids])


def _add_work(run: FetchRun, fetch: ShardFetch) -> None:
    """Count the shard's ids to ask into `run`, one shard in memory at a time; a shard with none
    keeps what it knows, written at once."""
    files, shard = run.files, fetch.shard
    if files.exists("statuses", shard):
        previous, ids = run.plan(shard)
        asked, answered_before = len(ids), _answered_before(previous, ids)
    else:  # never fetched: every id is asked, and counted from the file's footer without reading it
        previous, asked, answered_before = to_frame([]), files.input_count(shard), False
    if not asked:
        run.finish(ShardFetch(shard, previous))
        return
    run.shards[shard], run.total_ids = fetch, run.total_ids + asked
    run.rechecks = run.rechecks or answered_before


def _answered_before(previous: pl.DataFrame, ids: list[str]) -> bool:
    """Whether some of `ids` had an answer the change feed might confirm."""
    asked = pl.DataFrame({"condition_id": ids}, schema={"condition_id": pl.String})
    return previous.filter(pl.col("status").is_in(ANSWERED)).join(asked, on="condition_id", how="semi").height > 0


def _record(batch: list[Part], answer: BatchAnswer, info: SubgraphInfo, run: FetchRun, bounds: AnswerBounds, seconds: float) -> int:
    """Fold one answer into the shards of its parts, each finished when its last batch is in;
    the request's cost and unrequested entities count in its first shard. Returns how many of
    its ids resolved."""
    rows, unrequested = classify(answer, info.shape, datetime.now(timezone.utc), bounds)
    answered = to_frame(rows, info)  # one row per id, in the order asked: the parts' slices
    first = run.shards[batch[0].shard]
    first.stats.add(answer.stats)
    first.unrequested += unrequested
    offset = 0
    for part in batch:
        fetch = run.shards[part.shard]
        fetch.record(answered.slice(offset, len(part.ids)))
        offset += len(part.ids)
        fetch.ids_fetched += len(part.ids)
        fetch.seconds = seconds
        fetch.pending -= 1
        if fetch.pending == 0 and fetch.batched:
            run.finish(fetch)
    return sum(row["status"] == RESOLVED for row in rows)


TABLE_CHECKS = {spec.name for spec in table_checks.SPECS}
FETCH_SPEC = dg.AssetSpec(
    "goldsky_payouts",
    deps=[missing_condition_ids],
    group_name="payouts",
    kinds={"graphql", "parquet"},
    description="Payout vectors from the Goldsky subgraph: one status per input id, Parquet per shard.",
    skippable=True,  # the op may be run for the load alone
)


@dg.multi_asset(
    name="goldsky_payouts",
    specs=[FETCH_SPEC, load.SPEC],
    partitions_def=shard_partitions,
    backfill_policy=single_run,
    pool="goldsky",
    check_specs=[*fetch_checks.SPECS, *table_checks.SPECS],
    can_subset=True,
)
def goldsky_payouts(
    context: dg.AssetExecutionContext,
    config: FetchConfig,
    goldsky: GoldskyResource,
    files: PayoutFiles,
    run_lock: RunLock,
    chain: ChainResource,
    clickhouse: ClickHouseResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The fetch and its checks, the load and the table checks: one op, so that each shard is
    read back for the fetch checks, loaded and read for the table checks from a worker thread as
    soon as its statuses are written, while the later shards' answers are awaited. Any subset
    can be selected (the load alone, the checks alone); a load that fails leaves the fetch recorded."""
    selected, checks_selected = context.selected_asset_keys, {key.name for key in context.selected_asset_check_keys}
    checks = table_checks.TableChecks(files, clickhouse.layout.reads) if checks_selected & TABLE_CHECKS else None
    events: list[dg.MaterializeResult | dg.AssetCheckResult] = []
    failure: Exception | None = None
    # Nothing is yielded inside this block: a generator left suspended in it (Dagster raising
    # on an event) would be closed later by the collector, waiting on a worker already gone.
    with ThreadPoolExecutor(max_workers=1) as worker, load.ShardLoader(clickhouse, files, worker, checks) as loader:
        if FETCH_SPEC.key in selected:
            loading = loader if load.SPEC.key in selected else None
            events += _fetch_and_check(context, config, goldsky, files, chain, clickhouse, worker, loading)
        try:
            if load.SPEC.key in selected:
                events.append(loader.finish(context.partition_keys, context.log))
            if checks is not None:
                events += loader.check()
        except Exception as error:  # raised once the fetch is recorded
            failure = error
    for event in events:
        if isinstance(event, dg.MaterializeResult):
            yield event
        elif event.check_name in checks_selected:
            yield from logged(context, [event])
    if failure is not None:
        raise failure


def _fetch_and_check(
    context: dg.AssetExecutionContext,
    config: FetchConfig,
    goldsky: GoldskyResource,
    files: PayoutFiles,
    chain: ChainResource,
    clickhouse: ClickHouseResource,
    worker: ThreadPoolExecutor,
    loader: load.ShardLoader | None,
) -> list[dg.MaterializeResult | dg.AssetCheckResult]:
    """Every id of the selected shards fetched and given one status; each shard written is read
    back for the checks and handed to `loader` on `worker` (after the chain settles, if it is on).
    Returns the fetch's materialization, then its checks' results."""
    started = time.monotonic()
    now = datetime.now(timezone.utc)
    checked_before = datetime.fromisoformat(config.checked_before) if config.checked_before else now
    checked_before = checked_before if checked_before.tzinfo else checked_before.replace(tzinfo=timezone.utc)

    def plan(shard: str) -> tuple[pl.DataFrame, list[str]]:
        previous = files.read("statuses", shard)  # ids that left the input keep theirs
        return previous, ids_to_fetch(files.read("ids", shard), previous, checked_before, goldsky.fingerprint)

    shards = {shard: ShardFetch(shard) for shard in context.partition_keys}
    coverage = fetch_checks.Coverage()
    read_back: list[Future] = []

    def written(shard: str) -> None:
        if not chain.enabled:  # else the chain may still settle some of the shard's ids
            read_back.append(worker.submit(coverage.add, files, shard))
            if loader is not None:
                loader.add(shard)

    # Between windows, the shards written wait for no more: loaded then, they are not left for the end.
    idle = loader.flush if loader is not None and not chain.enabled else lambda: None
    run = FetchRun({}, plan, files, written, idle=idle, ahead=2 * goldsky.max_in_flight)
    for fetch in shards.values():
        _add_work(run, fetch)
    info = asyncio.run(_fetch(goldsky.client(context.log), run, context)) if run.shards else None
    if loader is not None and not chain.enabled:  # every shard is written: load the last ones while the fetch is reported
        loader.flush()
    from_chain = {}
    if chain.enabled:
        from_chain = settle_with_chain(chain, files, list(shards), info, now, context.log)
        from_chain |= resolution_times(chain, files, list(shards), now, context.log)
    from_chain["settled_by_source"] = dg.MetadataValue.json(settled_by_source(files, list(shards), now))
    for future in read_back:
        future.result()
    coverage.add_rest(files, list(shards))  # the shards the chain settled, and those not selected

    per_shard = []
    for shard, fetch in shards.items():
        counts = coverage.per_shard[shard]
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
    metadata = {**_metadata(per_shard, info, time.monotonic() - started), **from_chain}
    checks = [coverage.result(config.min_resolved_share, files, clickhouse), fetch_checks.fetch_health(files, context.run_id, coverage)]
    return [dg.MaterializeResult(asset_key=FETCH_SPEC.key, metadata=metadata), *checks]


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
