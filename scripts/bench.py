"""`make bench`: the whole backfill, run as users run it, timed against the local replica and checked.

    python -m scripts.bench                                       # 170,448 ids at 50 requests / 10 s, 1 s latency
    python -m scripts.bench --no-limit                            # no limit nor latency: the pipeline's own cost
    python -m scripts.bench --sizes 20000,170448,1000000,2000000  # a sweep: does time or memory grow with N?
    python -m scripts.bench --no-limit --hostile                  # and again with a hostile upstream's answers

The run is the CLI command in a process of its own, so its wall time and peak RSS include
Dagster's start-up and teardown; the replica runs in another process, so its CPU is not
counted against the pipeline (it is reported beside it instead). The floor is when the last
answer could arrive at best: the last window's start plus one latency; the overhead is the wall
time minus the floor. "Outside network" is the wall time minus the span from the first request
the replica saw to its last answer. "Checked" counts the ids whose status, and the resolved
payouts whose table row, agreed with the truth.
"""

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import polars as pl

from payout_assets.settings import PROJECT_DIR
from payout_assets.load import TABLE
from payout_assets.partitions import SHARDS
from payout_assets.resources.clickhouse import CHDB_SCHEME, ClickHouseResource
from payout_assets.resources.payout_files import PayoutFiles
from scripts.offline import BACKFILL, DAGSTER
from subgraph_replica import synthesize_truth, write_fixture
from subgraph_replica.process import replica_process

DEFAULT_IDS = 170_448
UNLIMITED = 100_000  # GOLDSKY_RATE_LIMIT when the replica enforces no limit
SEED = 6
POLL_SECONDS = 0.05  # resolution of the network span seen from the replica
# A hostile upstream: 40 % of the payout requests faulted, half of those (20 % of all) with a
# 1 MB HTML page and status 200, the rest spread over every other hostile answer and two
# plain faults. Corrupt values end their ids `malformed` and a day-long Retry-After ends its
# batch `failed`, by design: the truth is adjusted for those ids (from the replica's record).
HOSTILE_KINDS = ("html_200",) * 8 + ("oversized", "corrupt_answer", "corrupt_answer", "corrupt_values",
                                     "header_echo", "huge_retry_after", "500", "429")
HOSTILE_OPTIONS = ("--fault-rate", "0.4", "--fault-seed", "18", "--fault-kinds", ",".join(HOSTILE_KINDS),
                   "--fault-prefixes", "0x")
HOSTILE_ENV = {"GOLDSKY_MAX_ATTEMPTS": "12", "GOLDSKY_BACKOFF_SECONDS": "0.05", "GOLDSKY_API_KEY": "gsk-bench-key"}
RSS_POLL_SECONDS = 0.02  # how often the run's peak RSS so far is read
COLUMNS = ("ids", "wall s", "floor s", "overhead s", "requests", "429s", "slack ms", "retries", "peak RSS MB",
           "peak anon MB", "checked", "ids/s", "replica CPU s", "outside network s", "Parquet MB", "table MB")


@dataclass
class BenchResult:
    ids: int
    requests: int  # as the replica counted them: discovery, batches, retries and refusals
    rate_limited: int
    slack_seconds: float | None  # the least time by which a request the replica accepted cleared the limit's window
    retries: int
    wall_seconds: float
    floor_seconds: float
    peak_rss_mb: float
    peak_anon_mb: float  # the highest sampled RssAnon: RSS without the pages of mapped files (chDB's 530 MB library)
    replica_cpu_seconds: float
    network_seconds: float  # first request seen by the replica until its last answer
    parquet_mb: float  # every shard's files after the run
    table_mb: float  # the target table's active parts on disk
    faulted: dict[str, int] = field(default_factory=dict)  # requests per injected fault kind
    phases: dict[str, float] = field(default_factory=dict)
    phase_rss_mb: dict[str, float] = field(default_factory=dict)  # the peak RSS so far at the end of each phase
    problems: list[str] = field(default_factory=list)  # disagreements with the truth

    def row(self) -> dict[str, str]:
        checked = "MISMATCH" if self.problems else f"all {self.ids:,}"
        values = (f"{self.ids:,}", f"{self.wall_seconds:.1f}", f"{self.floor_seconds:.1f}",
                  f"{self.wall_seconds - self.floor_seconds:.1f}", self.requests, self.rate_limited,
                  "-" if self.slack_seconds is None else f"{1000 * self.slack_seconds:.1f}", self.retries,
                  f"{self.peak_rss_mb:.0f}", f"{self.peak_anon_mb:.0f}", checked, f"{self.ids / self.wall_seconds:,.0f}",
                  f"{self.replica_cpu_seconds:.2f}", f"{self.wall_seconds - self.network_seconds:.1f}",
                  f"{self.parquet_mb:.1f}", f"{self.table_mb:.1f}")
        return dict(zip(COLUMNS, map(str, values)))


def floor_seconds(requests: int, limit: int | None, window: float, latency: float) -> float:
    """When the last answer can arrive at best: its request starts with the last window."""
    windows = math.ceil(requests / limit) if limit else 1
    return (windows - 1) * window + latency


def write_inputs(count: int, workdir: Path, seed: int = SEED) -> tuple[Path, Path, pl.DataFrame]:
    """Random ids, the replica's fixture for them, and the truth (status, payout) per id."""
    rng = random.Random(seed)
    ids = [rng.randbytes(32).hex() for _ in range(count)]
    rows = synthesize_truth(ids, seed=seed)
    id_file, fixture = workdir / "ids.txt", workdir / "fixture.csv"
    id_file.write_text("\n".join(ids) + "\n")
    write_fixture(fixture, rows)
    held = pl.DataFrame(
        {"condition_id": [r.id[2:] for r in rows],
         "payout_numerators": [[int(n) for n in r.payout_numerators] for r in rows],
         "payout_denominator": [int(r.payout_denominator) for r in rows]},
        schema={"condition_id": pl.String, "payout_numerators": pl.List(pl.UInt32), "payout_denominator": pl.UInt32},
    )
    truth = pl.DataFrame({"condition_id": ids}).join(held, on="condition_id", how="left").with_columns(
        status=pl.when(pl.col("payout_denominator").is_null()).then(pl.lit("not_found"))
        .when(pl.col("payout_denominator") == 0).then(pl.lit("unresolved")).otherwise(pl.lit("resolved"))
    )
    return id_file, fixture, truth


class NetworkSpan(threading.Thread):
    """Polls the replica's counters for when the first request arrived and when the last one did:
    the pipeline's own time is the rest, whatever its steps do while requests are out."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.stop = threading.Event()
        self.first: float | None = None
        self.last: float | None = None
        self._seen = 0

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.base_url}/_stats") as answer:
            return json.load(answer)

    def run(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            seen, now = self.stats()["requests"], time.monotonic()
            if seen != self._seen:
                self.first, self.last, self._seen = self.first or now, now, seen

    def seconds(self, latency: float) -> float:
        return self.last - self.first + latency if self.first else 0.0


class RssSampler(threading.Thread):
    """Samples a process's peak resident memory so far (VmHWM, which the kernel keeps, so a spike
    between two samples is not missed): the phase in which it rises is the one that set the peak.
    Also its anonymous memory (RssAnon, which has no kernel peak, so a spike may fall between two
    samples): VmHWM counts the pages of chDB's library it touched, 130 MB more or less from run
    to run at the same size, by what the page cache held; RssAnon is what the process allocated."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (epoch seconds, VmHWM MB)
        self.peak_anon_mb = 0.0

    def run(self) -> None:
        while not self.stop.wait(RSS_POLL_SECONDS):
            try:
                fields = dict(line.split(":", 1) for line in self.status.read_text().splitlines())
                hwm_kb, anon_kb = (int(fields[name].split()[0]) for name in ("VmHWM", "RssAnon"))
            except (OSError, KeyError, ProcessLookupError):
                return  # the process is gone
            self.samples.append((time.time(), hwm_kb / 1024))
            self.peak_anon_mb = max(self.peak_anon_mb, anon_kb / 1024)


@dataclass
class Run:
    wall_seconds: float
    peak_rss_mb: float
    peak_anon_mb: float
    started: float  # epoch seconds, comparable with the event log's timestamps
    ended: float
    rss: list[tuple[float, float]] = field(default_factory=list)  # sampled (epoch seconds, peak MB so far)


def run_backfill(env: dict[str, str], workdir: Path) -> Run:
    """The users' command, timed from process start to exit, with its own peak RSS."""
    command = [DAGSTER, "asset", "materialize", "-m", "payout_assets", "--select", BACKFILL,
               "--partition-range", f"{SHARDS[0]}...{SHARDS[-1]}"]
    log = workdir / "run.log"
    with log.open("w") as output:
        started, epoch = time.monotonic(), time.time()
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
        sampler = RssSampler(process.pid)
        sampler.start()
        process.wait()
        wall = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
    if process.returncode:
        raise RuntimeError(f"the backfill exited with {process.returncode}:\n{log.read_text()[-3000:]}")
    # Not the child's ru_maxrss: Linux carries the spawning process's peak (this one, holding the
    # truth) across exec into it, which once made a 1,000,000-id run look 450 MB bigger than it was.
    return Run(wall, max((mb for _, mb in sampler.samples), default=0.0), sampler.peak_anon_mb, epoch, epoch + wall,
               sampler.samples)


def read_run(home: Path, run: Run) -> tuple[int, dict[str, float], dict[str, float]]:
    """goldsky_payouts' retries, where the time went and the peak RSS so far at the end of each phase."""
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        event = instance.get_latest_materialization_event(dg.AssetKey("goldsky_payouts"))
        retries = event.asset_materialization.metadata["retries"].value
        run_id = instance.get_runs(limit=1)[0].run_id
        kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
        records = sorted(instance.all_logs(run_id, of_type=kinds), key=lambda r: r.timestamp)
    finally:
        instance.dispose()
    spans: list[tuple[str, float, float]] = [("start-up", run.started, records[0].timestamp)]
    step_started, previous_end = {}, records[0].timestamp
    for record in records:
        if record.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            spans.append(("between steps", previous_end, record.timestamp))
            step_started[record.step_key] = record.timestamp
        else:
            spans.append((record.step_key, step_started[record.step_key], record.timestamp))
            previous_end = record.timestamp
    spans.append(("teardown", previous_end, run.ended))
    phases: dict[str, float] = {}
    rss: dict[str, float] = {}
    for name, start, end in spans:
        phases[name] = phases.get(name, 0.0) + end - start
        sampled = [mb for at, mb in run.rss if start <= at < end]
        rss[name] = max([rss.get(name, 0.0), *sampled])
    return retries, phases, rss


def adjust_for_faults(truth: pl.DataFrame, faulted_ids: dict[str, list[str]]) -> pl.DataFrame:
    """The truth a hostile upstream leaves: its corrupted ids `malformed`, and the ids of batches
    told to wait a day `failed`, neither with a payout."""
    final = {"malformed": faulted_ids.get("corrupt_values", []), "failed": faulted_ids.get("huge_retry_after", [])}
    for status, entity_ids in final.items():
        hit = pl.col("condition_id").is_in([entity_id[2:] for entity_id in entity_ids])
        truth = truth.with_columns(
            status=pl.when(hit).then(pl.lit(status)).otherwise("status"),
            payout_numerators=pl.when(hit).then(None).otherwise("payout_numerators"),
            payout_denominator=pl.when(hit).then(None).otherwise("payout_denominator"),
        )
    return truth


def check(truth: pl.DataFrame, files: PayoutFiles, clickhouse: ClickHouseResource) -> list[str]:
    """Every id's status in the Parquet files, and exactly the resolved payouts in the table."""
    problems = []
    statuses = pl.concat([files.read("statuses", shard) for shard in SHARDS])
    got = statuses.select("condition_id", pl.col("status").cast(pl.String)).sort("condition_id")
    wrong = truth.select("condition_id", "status").join(got, on="condition_id", how="full").filter(
        pl.col("status").ne_missing(pl.col("status_right")))
    if wrong.height or statuses.height != truth.height:
        problems.append(f"{wrong.height} ids with a wrong or missing status, {statuses.height} rows for {truth.height} ids")
    with clickhouse.get_client() as client:
        table = pl.from_arrow(client.query_arrow(
            f"SELECT condition_id, payout_numerators, payout_denominator FROM {TABLE} FINAL"))
    expected = truth.filter(pl.col("status") == "resolved").select(table.columns).sort("condition_id")
    if not table.cast(expected.schema).sort("condition_id").equals(expected):
        problems.append(f"{TABLE} holds {table.height} rows; the truth has {expected.height} resolved payouts")
    return problems


def stored_mb(files: PayoutFiles, clickhouse: ClickHouseResource) -> tuple[float, float]:
    """What a run leaves on disk: the shards' Parquet files, and the table's parts."""
    parquet = sum(path.stat().st_size for path in Path(files.shards_dir).rglob("*.parquet"))
    database, name = TABLE.split(".")
    with clickhouse.get_client() as client:
        [(table,)] = client.query(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = {db:String} AND table = {name:String}",
            parameters={"db": database, "name": name},
        ).result_rows
    return parquet / 1e6, table / 1e6


def run_benchmark(ids: int = DEFAULT_IDS, rate_limit: int | None = 50, window: float = 10.0,
                  latency: float = 1.0, workdir: Path | None = None, hostile: bool = False) -> BenchResult:
    """One full backfill of `ids` fresh ids into fresh state; `rate_limit=None` means no limit;
    `hostile` serves the HOSTILE_KINDS mix."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            return run_benchmark(ids, rate_limit, window, latency, Path(scratch), hostile)
    id_file, fixture, truth = write_inputs(ids, workdir)
    files = PayoutFiles(input_ids_path=str(id_file), shards_dir=str(workdir / "shards"))
    clickhouse = ClickHouseResource(url=f"{CHDB_SCHEME}{workdir / 'chdb'}")
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "dagster.yaml", home)
    limit_options = ("--rate-limit", str(rate_limit), "--window", str(window)) if rate_limit else ()
    fault_options = HOSTILE_OPTIONS if hostile else ()
    with replica_process(fixture, *limit_options, "--latency", str(latency), *fault_options) as url:
        env = {**os.environ, "GOLDSKY_URL": url, "GOLDSKY_RATE_LIMIT": str(rate_limit or UNLIMITED),
               "CLICKHOUSE_URL": clickhouse.url, "PAYOUT_INPUT_IDS": files.input_ids_path,
               "PAYOUT_SHARDS_DIR": files.shards_dir, "DAGSTER_HOME": str(home), **(HOSTILE_ENV if hostile else {})}
        span = NetworkSpan(url.split("/subgraphs/")[0])
        cpu_before = span.stats()["cpu_seconds"]  # loading the fixture is not the replica's share
        # The inputs just written (about 330 MB at 2,000,000 ids) go to disk now, not while the
        # run starts: the start-up of a 2,000,000-id run took 2.55 s beside their write-back, 2.12 after.
        os.sync()
        span.start()
        try:
            run = run_backfill(env, workdir)
        finally:
            span.stop.set()
            span.join()
        replica = span.stats()
        with urllib.request.urlopen(f"{span.base_url}/_stats/ids") as answer:
            truth = adjust_for_faults(truth, json.load(answer)["faulted"])
    retries, phases, phase_rss = read_run(home, run)
    return BenchResult(ids, replica["requests"], replica["rate_limited"], replica["closest_to_limit_seconds"], retries,
                       run.wall_seconds, floor_seconds(replica["accepted"], rate_limit, window, latency),
                       run.peak_rss_mb, run.peak_anon_mb, replica["cpu_seconds"] - cpu_before, span.seconds(latency),
                       *stored_mb(files, clickhouse), replica["faulted"], phases, phase_rss, check(truth, files, clickhouse))


def format_table(rows: list[dict[str, str]]) -> str:
    """Right-aligned columns under their names."""
    columns = list(rows[0])
    widths = [max(len(column), *(len(row[column]) for row in rows)) for column in columns]
    lines = [columns, *([row[column] for column in columns] for row in rows)]
    return "\n".join("  ".join(value.rjust(width) for value, width in zip(line, widths)) for line in lines)


def phase_rows(results: list[BenchResult], rss: bool = False) -> list[dict[str, str]]:
    """Seconds (or the highest RSS, MB; "-" where no 20 ms sample fell in the phase) per phase, one
    row per run; phases in the order the first run went through them."""
    names = list(dict.fromkeys(name for result in results for name in result.phases))
    if rss:
        return [{"ids": f"{r.ids:,}", **{n: f"{r.phase_rss_mb.get(n, 0.0):.0f}" if r.phase_rss_mb.get(n) else "-"
                                         for n in names}} for r in results]
    return [{"ids": f"{r.ids:,}", **{n: f"{r.phases.get(n, 0.0):.2f}" for n in names}} for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=DEFAULT_IDS)
    parser.add_argument("--rate-limit", type=int, default=50, help="replica's limit per window")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--no-limit", action="store_true", help="no limit nor latency")
    parser.add_argument("--sizes", help="comma separated id counts, one fresh run each (instead of --ids)")
    parser.add_argument("--hostile", action="store_true", help="serve the hostile answers of HOSTILE_KINDS")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else [args.ids]
    results = []
    for size in sizes:
        results.append(run_benchmark(size, None if args.no_limit else args.rate_limit, args.window,
                                     0.0 if args.no_limit else args.latency, hostile=args.hostile))
        print(format_table([results[-1].row()]), file=sys.stderr, flush=True)  # each size as it ends
    print(format_table([result.row() for result in results]))
    print("\nseconds by phase\n" + format_table(phase_rows(results)))
    print("\npeak RSS MB so far, at the end of each phase\n" + format_table(phase_rows(results, rss=True)))
    for result in results:
        for problem in result.problems:
            print(f"MISMATCH ({result.ids} ids): {problem}", file=sys.stderr)
    sys.exit(1 if any(result.problems for result in results) else 0)


if __name__ == "__main__":
    main()
