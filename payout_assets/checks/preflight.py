"""Pre-flight checks: the seed's readiness script, run before a single payout is fetched.

`missing_condition_ids` runs them as its own checks, as it reads the input, and they block:
an ERROR here stops the run before `goldsky_payouts`, so a broken input, endpoint or table
never costs a payout request.
"""

import asyncio
import functools
import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
from clickhouse_connect.driver.client import Client
from pydantic import Field

from payout_assets.core.condition_ids import ParsedIds
from payout_assets.fetch_plan import count_to_fetch, request_count
from payout_assets.metadata import markdown_table
from payout_assets.partitions import SHARDS
from payout_assets.resources.clickhouse import ClickHouseResource, ClickHouseUnavailable
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.settings import SettingError
from payout_assets.core.subgraph import SubgraphInfo
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.target_table import TABLE, TableLayout, shape_differences, table_exists

PROBE_SEND_WAIT_SECONDS = 2.0  # the input's reading waits at most this long for the probe to leave

DESCRIPTIONS = {
    "input_ids_valid": "The input (file, and PAYOUT_INPUT_SQL if set) reads and holds at least one valid condition id.",
    "storage_writable": "The shard directory (and the embedded ClickHouse directory) can be written.",
    "clickhouse_ready": "ClickHouse answers and the target table is absent or has exactly the expected shape.",
    "goldsky_ready": "The subgraph answers with a payout shape this project reads, without indexing errors or undue lag.",
    "backfill_estimate": "Always passes: how many ids and requests remain, and the time the rate limit sets.",
}
SPECS = [dg.AssetCheckSpec(name, asset="missing_condition_ids", blocking=True, description=text) for name, text in DESCRIPTIONS.items()]


class PreflightConfig(dg.Config):
    max_subgraph_lag_hours: float = Field(default=6.0, description="WARN when the subgraph's head block is older than this.")


def _result(name: str, problem: str | None, metadata: dict | None = None, warn: bool = False) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=problem is None,
        severity=dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR,
        metadata={"problem": problem or "none", **(metadata or {})},
    )


def input_ids_valid(files: PayoutFiles, parsed: ParsedIds) -> dg.AssetCheckResult:
    problem = None if parsed.valid else f"{files.input_ids_path} holds no valid condition id"
    return _result("input_ids_valid", problem, {"valid_ids": parsed.valid, "invalid_lines": parsed.invalid_count})


def storage_writable(files: PayoutFiles, clickhouse: ClickHouseResource) -> dg.AssetCheckResult:
    directories = [Path(files.shards_dir)]
    if clickhouse.is_embedded:
        directories.append(clickhouse.embedded_directory)
    for directory in directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=directory).close()
        except OSError as error:
            return _result("storage_writable", f"{directory} is not writable: {error.strerror}")
    return _result("storage_writable", None, {"directories": ", ".join(map(str, directories))})


def clickhouse_ready(clickhouse: ClickHouseResource) -> tuple[dg.AssetCheckResult, dict[str, int]]:
    """Target table shape, and the rows already loaded per shard. It needs nothing of the input:
    `missing_condition_ids` reads it while the input is split (opening chDB alone takes 0.5 s)."""
    try:
        with clickhouse.get_client() as client:
            return _table_ready(client, clickhouse.layout)
    except ClickHouseUnavailable as error:
        return _result("clickhouse_ready", str(error)), {}


def _table_ready(client: Client, layout: TableLayout) -> tuple[dg.AssetCheckResult, dict[str, int]]:
    if not table_exists(client, TABLE):
        return _result("clickhouse_ready", None, {"target_table": f"{TABLE} will be created"}), {}
    if differences := shape_differences(client, layout):  # the load would refuse it too; FINAL may not even apply
        metadata = {"target_table": f"{TABLE} exists", "differences": dg.MetadataValue.json(differences)}
        return _result("clickhouse_ready", "; ".join(differences), metadata), {}
    loaded = dict(client.query(f"SELECT substring(condition_id, 1, 1), count() FROM {layout.reads} FINAL GROUP BY 1").result_rows)
    return _result("clickhouse_ready", None, {"target_table": f"{TABLE} exists"}), loaded


def goldsky_ready(
    goldsky: GoldskyResource,
    files: PayoutFiles,
    max_lag_hours: float,
    run_id: str,
    log: logging.Logger | None = None,
    on_sent: Callable[[], None] | None = None,
) -> dg.AssetCheckResult:
    """Probe the endpoint; what it finds is stored for this run's fetch, which then plans at once.
    Every retry is logged with its wait: an unreachable endpoint is not a silent half minute.
    `on_sent` is called when the probe has left."""
    endpoint = {"endpoint": goldsky.display_url}  # never the key a gateway URL may carry
    try:
        client = goldsky.client(log, logged_wait_seconds=0, on_sent=on_sent)
    except SettingError as error:
        return _result("goldsky_ready", str(error), endpoint)

    async def discover() -> SubgraphInfo:
        async with client:
            return await client.discover()

    try:
        info = asyncio.run(discover())
    except Exception as error:  # any failure to reach or read the endpoint is this check's finding
        return _result("goldsky_ready", client.bounds.reason(f"{type(error).__name__}: {error}"), endpoint)
    files.write_probe(run_id, info)
    metadata = {**endpoint, "payout_shape": info.shape.kind, "block": info.block_number}
    if info.has_indexing_errors:
        return _result("goldsky_ready", "the subgraph reports indexing errors and withholds data", metadata)
    if info.block_timestamp is not None:
        lag_hours = (time.time() - info.block_timestamp) / 3600
        metadata["lag_hours"] = round(lag_hours, 2)
        if lag_hours > max_lag_hours:
            behind = f"the subgraph is {lag_hours:.1f} h behind the clock (head block {info.block_number})"
            return _result("goldsky_ready", behind, metadata, warn=True)
    return _result("goldsky_ready", None, metadata)


def backfill_estimate(files: PayoutFiles, goldsky: GoldskyResource, loaded: dict[str, int]) -> dg.AssetCheckResult:
    """Requests still to send for the shards on disk, and the time the rate limit sets."""
    now = datetime.now(timezone.utc)
    per_shard = []
    for shard in SHARDS:
        if files.exists("ids", shard):
            pending = count_to_fetch(files, shard, now, goldsky.fingerprint)
            per_shard.append({"shard": shard, "rows_loaded": loaded.get(shard, 0), "ids_to_fetch": pending})
    ids_to_fetch = sum(row["ids_to_fetch"] for row in per_shard)
    requests = request_count(ids_to_fetch)  # batches run across shards
    seconds = (math.ceil(requests / goldsky.rate_limit) - 1) * goldsky.window_seconds if requests else 0.0
    return _result(
        "backfill_estimate",
        None,
        {
            "ids_to_fetch": ids_to_fetch,
            "requests": requests,
            "estimated_seconds_at_rate_limit": seconds,
            "per_shard": markdown_table(per_shard, ["shard", "rows_loaded", "ids_to_fetch"]),
        },
    )


class EndpointProbe:
    """`goldsky_ready`, started in a worker thread once the input has shown a valid id, so its
    round trip overlaps reading the rest of the input; an input without one sends nothing."""

    def __init__(self, pool: ThreadPoolExecutor, goldsky: GoldskyResource, files: PayoutFiles, config: PreflightConfig,
                 run_id: str, log: logging.Logger) -> None:
        self._sent = threading.Event()
        self._send = functools.partial(
            pool.submit, goldsky_ready, goldsky, files, config.max_subgraph_lag_hours, run_id, log, self._sent.set
        )
        self._probe: Future[dg.AssetCheckResult] | None = None

    def start(self) -> None:
        """Send the probe, unless it is on its way already, and wait until it has left (or
        failed to): the last request of a big fetch is a whole number of windows after it, and
        beside the input's reading and chDB's opening, which hold the GIL, it took 0.13-0.35 s to
        leave instead of 0.035."""
        if self._probe is None:
            self._probe = self._send()
            self._probe.add_done_callback(lambda _: self._sent.set())
            self._sent.wait(PROBE_SEND_WAIT_SECONDS)

    def result(self) -> dg.AssetCheckResult:
        if self._probe is None:  # nothing would be fetched: not even a probe went upstream
            return _result("goldsky_ready", "not probed: the input has no valid ids", warn=True)
        return self._probe.result()


def preflight_results(
    parsed: ParsedIds,
    files: PayoutFiles,
    goldsky: GoldskyResource,
    clickhouse: ClickHouseResource,
    table: Future[tuple[dg.AssetCheckResult, dict[str, int]]],
    probe: EndpointProbe,
) -> Iterator[dg.AssetCheckResult]:
    """The five checks of the input just read, with `clickhouse_ready`'s `table` read meanwhile;
    the probe's last: the local ones run while it is still in flight."""
    yield input_ids_valid(files, parsed)
    yield storage_writable(files, clickhouse)
    result, loaded = table.result()
    yield result
    yield backfill_estimate(files, goldsky, loaded)
    yield probe.result()
