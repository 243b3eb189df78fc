"""`resolutions_external_ingest`: resolved payouts loaded into ClickHouse, idempotently.

It is the second asset of the `goldsky_payouts` op (fetch.py): a run that fetches hands each
shard to a `ShardLoader` as soon as its statuses are written, and the loader inserts the shards
from a worker thread, 50,000 input ids' worth at a time (or whatever waits, between two windows
of the rate limit), while the later shards' answers are still awaited; a run that selects this
asset alone loads the selected shards from their Parquet.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

import dagster as dg
import polars as pl
from clickhouse_connect.driver.client import Client

from payout_assets.core.id_digests import Digests, id_digests
from payout_assets.partitions import IN_ID_RANGE, SHARDS, consecutive_groups, id_range
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import RESOLVED, SOURCE_OF_ROW, SUBGRAPH_SOURCE
from payout_assets.target_table import TABLE, TableLayout, shape_differences

if TYPE_CHECKING:  # table_checks names this module's asset: imported for the annotation only
    from payout_assets.checks.table_checks import TableChecks

SOURCE = SUBGRAPH_SOURCE
# Input ids loaded together: small shards wait for each other, since a group's load and table
# reads cost about 60 ms whatever its size (20,000 ids took 0.97 s in 16 groups, 0.16 s in one).
LOAD_GROUP_ROWS = 50_000
# Rows per insert: chDB's memory for one follows its rows. Loading 2,000,000 ids' shards alone
# peaked at 270-275 MB anonymous with 20,000, 256-260 with 10,000, 255-258 with 5,000; each halving
# adds about 3 s over the 16 shards, which load beside the fetch.
INSERT_ROWS = 10_000

SPEC = dg.AssetSpec(
    "resolutions_external_ingest",
    deps=["goldsky_payouts"],
    group_name="payouts",
    kinds={"clickhouse"},
    description="Resolved Goldsky payouts in `default.resolutions_external_ingest` (ReplacingMergeTree), "
    "loaded from a worker thread as the fetch writes its shards.",
    skippable=True,  # the op may be run for the fetch alone
)


# What the load reads of a shard's statuses.
LOAD_COLUMNS = ["condition_id", "status", "payout_numerators", "payout_denominator", "winning_index", "resolved_at",
                "payout_shape", "resolved_at_source", "fetched_at", "block_number"]


def rows_to_load(statuses: pl.DataFrame, loaded: pl.DataFrame) -> pl.DataFrame:
    """Resolved rows the table lacks, or holds in an older version: a re-run inserts nothing.
    A first load that skipped the joins when the table held none peaked 5 MB higher at 20,000
    ids (measured 2026-12-03): they stay."""
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


class ShardLoader:
    """The load of one run, on the caller's one-thread `worker`. `add` hands over a shard whose
    statuses are final; once the shards waiting hold LOAD_GROUP_ROWS input ids, the worker loads
    them together (consecutive ones in groups of at most that many); `flush` loads whatever
    waits (the fetch calls it when no request awaits an answer), and `finish` the rest. The first failure
    stops the load, not the caller: `finish` raises it in the caller's thread, after the fetch
    has recorded what it fetched. With `checks`, each group is read for the table checks right
    after its insert, on the same client."""

    def __init__(
        self, clickhouse: ClickHouseResource, files: PayoutFiles, worker: ThreadPoolExecutor, checks: "TableChecks | None" = None
    ) -> None:
        self._clickhouse, self._files, self._worker, self._checks = clickhouse, files, worker, checks
        self._lock = threading.Lock()
        self._waiting: list[str] = []  # handed over, not loaded yet (the lock guards it)
        self._queued: set[str] = set()
        self._sizes: dict[str, int] = {}  # input ids per shard, read by the worker
        self._tasks: list[Future] = []
        self._client: Client | None = None
        self._closing = ExitStack()
        self._error: Exception | None = None
        self._started = time.monotonic()
        self.inserted: Counter[str] = Counter()  # rows inserted, by source
        self.resolved = self.total = 0

    def __enter__(self) -> "ShardLoader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._worker.submit(self._closing.close).result()  # the worker opened the client: it closes it

    def add(self, shard: str) -> None:
        self._hand_over([shard])
        self._tasks.append(self._worker.submit(self._load_waiting, everything=False))

    def flush(self) -> None:
        """Load every shard waiting, however few ids they hold: no more are coming before `finish`."""
        self._tasks.append(self._worker.submit(self._load_waiting, everything=True))

    def finish(self, shards: list[str], log: logging.Logger) -> dg.MaterializeResult:
        """Load every shard waiting and those of `shards` not handed over yet, wait for the worker, and report."""
        self._hand_over([shard for shard in shards if shard not in self._queued])
        self.flush()
        for task in self._tasks:
            task.result()
        if self._error is not None:
            raise self._error
        log.info(f"inserted {sum(self.inserted.values())} rows into {TABLE}; the selected shards now hold {self.total}")
        return dg.MaterializeResult(
            asset_key=SPEC.key,
            metadata={
                "table": TABLE,
                "rows_inserted": sum(self.inserted.values()),
                "rows_inserted_by_source": dg.MetadataValue.json(dict(self.inserted)),
                "rows_in_selected_shards": self.total,
                "resolved_in_parquet": self.resolved,
                "clickhouse": self._clickhouse.display_url,
                "seconds": round(time.monotonic() - self._started, 2),
            },
        )

    def check(self) -> list[dg.AssetCheckResult]:
        """The table checks' results, once the rest of the table is read (after `finish`, if loading)."""
        return self._worker.submit(self._check).result()

    def _check(self) -> list[dg.AssetCheckResult]:
        client = self._client or self._closing.enter_context(self._clickhouse.get_client())
        return self._checks.results(client)

    def _hand_over(self, shards: list[str]) -> None:
        with self._lock:
            self._waiting += shards
            self._queued.update(shards)

    def _size(self, shard: str) -> int:
        if shard not in self._sizes:
            self._sizes[shard] = self._files.input_count(shard)
        return self._sizes[shard]

    def _load_waiting(self, everything: bool) -> None:
        """Load the shards waiting: all of them, or none until they hold LOAD_GROUP_ROWS input ids."""
        with self._lock:
            shards = sorted(self._waiting, key=SHARDS.index)
            if not everything and sum(map(self._size, shards)) < LOAD_GROUP_ROWS:
                return
            self._waiting = []
        if not shards or self._error is not None:
            return
        try:
            client = self._client or self._open()
            resolved_rows = partial(self._files.input_statuses, columns=LOAD_COLUMNS, where=pl.col("status") == RESOLVED)
            for group in consecutive_groups(shards, self._size, LOAD_GROUP_ROWS):
                loaded = load_rows(client, self._clickhouse.layout, group, resolved_rows)
                if self._checks is not None:
                    self._checks.add(client, group, loaded.digests)
                self.inserted.update(loaded.inserted)
                self.resolved, self.total = self.resolved + loaded.resolved, self.total + loaded.total
        except Exception as error:  # raised by finish(), in the step's thread
            self._error = error

    def _open(self) -> Client:
        """The client, and the table created or found in the shape this load writes."""
        self._client = client = self._closing.enter_context(self._clickhouse.get_client())
        layout = self._clickhouse.layout
        for statement in layout.create_statements():  # IF NOT EXISTS: a table already there is checked, never altered
            client.command(statement)
        if differences := shape_differences(client, layout):
            raise dg.Failure(
                description=f"{TABLE} differs from the shape this load writes; nothing was inserted and the "
                f"table was left as it is: {'; '.join(differences)}",
                metadata={"table": TABLE, "differences": dg.MetadataValue.json(differences)},
            )
        return client


class Loaded(NamedTuple):
    inserted: Counter[str]  # rows inserted, by source
    resolved: int  # resolved rows read
    total: int  # rows the id range holds now
    digests: Digests  # of the resolved ids read, per shard: the table checks compare them with the table's


def load_rows(client: Client, layout: TableLayout, group: list[str], read: Callable[[str], pl.DataFrame]) -> Loaded:
    """Insert the resolved rows of the group's shards (`read`) that the table lacks. Every query
    reads the range's ids only (the sort key's prefix). The statuses read are let go before the
    inserts, whose memory comes on top of what is held: about 10 MB less at 2,000,000 ids than
    holding them; their ids' digests stay, so the table checks need not read them again."""
    ids = id_range(group)
    resolved = pl.concat([read(shard) for shard in group])
    resolved_count, digests = resolved.height, id_digests(resolved)
    loaded = pl.from_arrow(client.query_arrow(f"SELECT condition_id, version FROM {layout.reads} FINAL WHERE {IN_ID_RANGE}", parameters=ids))
    new_rows = rows_to_load(resolved, loaded.cast({"condition_id": pl.String, "version": pl.UInt64}))
    del resolved, loaded
    for chunk in new_rows.iter_slices(INSERT_ROWS):  # ClickHouse's memory per insert follows its rows
        client.insert_arrow(layout.reads, chunk.to_arrow(), settings=layout.insert_settings)
    [(total,)] = client.query(f"SELECT count() FROM {layout.reads} FINAL WHERE {IN_ID_RANGE}", parameters=ids).result_rows
    return Loaded(Counter(dict(new_rows.group_by("source").len().iter_rows())), resolved_count, total, digests)
