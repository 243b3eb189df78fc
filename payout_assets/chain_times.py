"""Resolution times from the chain: the block time of each condition's `ConditionResolution` event.

The pnl-subgraph has no resolution time, so `resolved_at` would be the fetch time. With the
chain source on, the fetch scans the contract's `ConditionResolution` events from a stored
cursor to the chain's head, in block ranges the endpoint accepts, and keeps every event's
block time per shard (`chain_times/shard=X.parquet` beside the statuses) with the cursor
(`chain_times/cursor.json`), so that a daily run reads only the blocks added since. Rows
resolved in this run whose time is the fetch time then take the event's block time, with
`resolved_at_source = 'chain'`.
"""

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

import polars as pl

from payout_assets.partitions import SHARDS
from payout_assets.resources.chain import ChainResource
from payout_assets.resources.conditional_tokens import ConditionalTokens, MalformedAnswer, Resolution
from payout_assets.core.subgraph import RequestStats
from payout_assets.fetch_plan import update_statuses
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import RESOLVED
from payout_assets.core.json_file import write_json

KIND = "chain_times"
SCHEMA = {"condition_id": pl.String, "block_number": pl.UInt64, "resolved_at": pl.Datetime("us", "UTC")}
RANGES_PER_STEP = 100  # getLogs ranges between two cursor writes: a killed run loses at most this much
FROM_CHAIN, FROM_FETCH_TIME = "chain", "fetch_time"


@dataclass
class Scan:
    """What one scan read: blocks first..last (none when first > last), events, cost."""

    first_block: int
    last_block: int
    events: int = 0
    complete: bool = True
    stats: RequestStats = field(default_factory=RequestStats)


def _cursor_path(files: PayoutFiles):
    return files.path(KIND, "0").parent / "cursor.json"


def read_cursor(files: PayoutFiles, contract: str) -> int | None:
    """The first block not scanned yet for `contract`; None before the first scan (or for another contract)."""
    try:
        cursor = json.loads(_cursor_path(files).read_text())
        return int(cursor["next_block"]) if cursor.get("contract") == contract.lower() else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cursor(files: PayoutFiles, contract: str, next_block: int) -> None:
    write_json(_cursor_path(files), {"contract": contract.lower(), "next_block": next_block})


def read_times(files: PayoutFiles, shard: str) -> pl.DataFrame:
    return pl.read_parquet(files.path(KIND, shard)) if files.exists(KIND, shard) else pl.DataFrame(schema=SCHEMA)


def _store(files: PayoutFiles, events: list[Resolution], times: dict[int, int]) -> None:
    fresh = pl.DataFrame(
        {
            "condition_id": [e.condition_id for e in events],
            "block_number": [e.block_number for e in events],
            "resolved_at": [datetime.fromtimestamp(times[e.block_number], timezone.utc) for e in events],
        },
        schema=SCHEMA,
    ).with_columns(shard=pl.col("condition_id").str.slice(0, 1))
    for (shard,), frame in fresh.group_by("shard"):
        if shard in SHARDS:
            merged = pl.concat([read_times(files, shard), frame.drop("shard")])
            files.write(KIND, shard, merged.sort("block_number").unique("condition_id", keep="first").sort("condition_id"))


async def scan(ctf: ConditionalTokens, files: PayoutFiles, contract: str, start_block: int, block_range: int,
               log: logging.Logger) -> Scan:
    """Read every `ConditionResolution` event from the cursor to the head; the cursor moves only
    past blocks whose every range was answered, so a failure costs a later re-read, never an event."""
    first = read_cursor(files, contract)
    first = start_block if first is None else first
    head = await ctf.head()
    result = Scan(first, head)
    while first <= head:
        last = min(head, first + block_range * RANGES_PER_STEP - 1)
        ranges = [(b, min(b + block_range - 1, last)) for b in range(first, last + 1, block_range)]
        try:
            events, stats = await ctf.resolutions(ranges)
            result.stats.add(stats)
            times, stats = await ctf.block_timestamps(e.block_number for e in events)
            result.stats.add(stats)
        except MalformedAnswer as problem:
            log.warning(f"resolution events from block {first} on could not be read ({problem}); the next run reads them")
            result.last_block, result.complete = first - 1, False
            return result
        _store(files, events, times)
        _write_cursor(files, contract, last + 1)
        result.events += len(events)
        log.info(f"chain: read blocks {first}..{last} of {head}, {len(events)} resolution events")
        first = last + 1
    return result


def stamp(statuses: pl.DataFrame, times: pl.DataFrame, since: datetime) -> tuple[pl.DataFrame, int]:
    """Rows resolved since `since` whose time is the fetch time take the chain's, where it has one."""
    joined = statuses.join(times.select("condition_id", chain_time="resolved_at"), on="condition_id", how="left")
    takes = (
        (pl.col("status") == RESOLVED) & (pl.col("resolved_at_source") == FROM_FETCH_TIME)
        & (pl.col("fetched_at") >= since) & pl.col("chain_time").is_not_null()
    )
    stamped = joined.with_columns(
        resolved_at=pl.when(takes).then(pl.col("chain_time")).otherwise(pl.col("resolved_at")),
        resolved_at_source=pl.when(takes).then(pl.lit(FROM_CHAIN)).otherwise(pl.col("resolved_at_source")),
    ).drop("chain_time")
    return stamped, joined.filter(takes).height


def resolution_times(chain: ChainResource, files: PayoutFiles, shards: list[str], since: datetime,
                     log: logging.Logger) -> dict[str, int]:
    """Scan new resolution events, then stamp this run's rows in `shards`; metadata counts.

    Chain trouble never fails the fetch: the rows keep their fetch time and the next run
    reads the blocks this one could not.
    """
    async def run() -> Scan:
        async with chain.contract() as ctf:
            return await scan(ctf, files, chain.contract_address, chain.log_start_block, chain.log_block_range, log)

    try:
        result = asyncio.run(run())
    except MalformedAnswer as problem:
        log.warning(f"the chain's head is unknown ({problem}): no resolution events read in this run")
        result = Scan(0, -1, complete=False)
    stamped = 0
    for shard in shards:
        frame, count = stamp(files.read("statuses", shard), read_times(files, shard), since)
        if count:
            update_statuses(files, shard, frame)
            stamped += count
    return {
        "resolved_at_from_chain": stamped,
        "chain_blocks_read": max(0, result.last_block - result.first_block + 1),
        "chain_resolution_events": result.events,
        "chain_requests": result.stats.requests,
        "chain_scan_complete": int(result.complete),
    }
