"""`make bench` in small: 2,000 ids without limit or latency, checked for correctness only.

Timings are the benchmark's business (they depend on the machine and its load); this keeps
its plumbing honest: the run, the event log, the replica's counters and the truth check.
"""

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from payout_assets.resources.clickhouse import CHDB_SCHEME, ClickHouseResource
from payout_assets.resources.payout_files import PayoutFiles
from scripts.bench import COLUMNS, check, format_table, phase_rows, run_benchmark, write_inputs

pytestmark = pytest.mark.slow  # process-level: `make test-fast` skips it


IDS = 2000


def test_benchmark_backfill_matches_the_truth(tmp_path: Path):
    result = run_benchmark(ids=IDS, rate_limit=None, latency=0.0, workdir=tmp_path)

    assert result.problems == []
    assert result.rate_limited == 0 and result.retries == 0 and result.slack_seconds is None  # no limit: no window to clear
    assert result.requests == 1 + 2  # the probe and two batches of 1,000 ids, as the replica counted them
    assert result.floor_seconds == 0.0 and 0 < result.peak_anon_mb < result.peak_rss_mb  # anonymous pages are part of the RSS
    assert result.parquet_mb > 0 and result.table_mb > 0
    assert {"start-up", "missing_condition_ids", "goldsky_payouts", "teardown"} <= set(result.phases)
    assert abs(sum(result.phases.values()) - result.wall_seconds) < 0.5

    header, row = format_table([result.row()]).splitlines()
    assert all(column in header for column in COLUMNS) and row.split()[0] == f"{IDS:,}"
    assert f"all {IDS:,}" in row  # every id checked against the truth
    assert replace(result, slack_seconds=0.0123).row()["slack ms"] == "12.3" and result.row()["slack ms"] == "-"
    assert format_table(phase_rows([result])).splitlines()[1].split()[0] == f"{IDS:,}"
    # The peak is told by phase from samples of the run's own process, never above its true peak.
    assert 0 < max(result.phase_rss_mb.values()) <= result.peak_rss_mb + 1

    # The check is not vacuous: one id given another status upstream is found out.
    (tmp_path / "again").mkdir()
    _, _, truth = write_inputs(IDS, tmp_path / "again")
    flipped = truth.with_columns(status=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("failed")).otherwise("status"))
    files = PayoutFiles(input_ids_path=str(tmp_path / "ids.txt"), shards_dir=str(tmp_path / "shards"))
    assert check(flipped, files, ClickHouseResource(url=f"{CHDB_SCHEME}{tmp_path / 'chdb'}"))


def test_a_phase_no_memory_sample_fell_in_shows_none_rather_than_zero():
    result = SimpleNamespace(ids=20_000, phases={"start-up": 2.0, "between steps": 0.01}, phase_rss_mb={"start-up": 170.0})
    assert phase_rows([result], rss=True) == [{"ids": "20,000", "start-up": "170", "between steps": "-"}]
