"""Completion checks on `goldsky_payouts`: every input id accounted for, and what it cost."""

import dagster as dg
import polars as pl

from payout_assets.input_ids import input_counts
from payout_assets.metadata import MAX_LISTED, id_list, markdown_table
from payout_assets.partitions import SHARDS
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import FAILED, MALFORMED, RESOLVED, STATUS_SCHEMA, STATUSES, count_statuses

RETRY_WARN_SHARE = 0.01

# goldsky_payouts' own checks, evaluated in its step: the seed's coverage validation and its
# worker-checkpoint analysis, from the shard Parquet.
ASSET = dg.AssetKey("goldsky_payouts")  # its op also materializes resolutions_external_ingest
SPECS = [
    dg.AssetCheckSpec("coverage_vs_input", asset=ASSET, description="Resolved share of valid input ids; every id has one status."),
    dg.AssetCheckSpec("fetch_health", asset=ASSET, description="Requests, retries, 429s and failed ids per shard."),
]


TROUBLED_SCHEMA = {name: STATUS_SCHEMA[name] for name in ("condition_id", "status", "reason")}


def _fetched_shards(files: PayoutFiles) -> list[str]:
    return [shard for shard in SHARDS if files.exists("ids", shard)]


class Coverage:
    """`coverage_vs_input`, a shard at a time: the fetch adds each shard once its statuses are
    final (as its last answer lands, while later shards' answers are awaited), so little of the
    check is left after the last answer (2.2 s at 2,000,000 ids when it read every shard then).
    It keeps each shard's first failed and malformed ids too, for `fetch_health` (which took
    0.5 s to read them from every shard after the last answer, at 2,000,000 ids)."""

    def __init__(self) -> None:
        self.per_shard: dict[str, dict[str, int]] = {}  # the shard's input ids by status
        self.troubled: dict[str, pl.DataFrame] = {}  # the shard's first MAX_LISTED failed and malformed ids
        self.unaccounted: list[str] = []
        self.duplicated: list[str] = []

    def add(self, files: PayoutFiles, shard: str) -> None:
        ids, statuses = files.read("ids", shard), files.read("statuses", shard, columns=["condition_id", "status", "reason"])
        self.unaccounted += ids.join(statuses, on="condition_id", how="anti")["condition_id"].to_list()
        self.duplicated += statuses.filter(pl.col("condition_id").is_duplicated())["condition_id"].unique().to_list()
        inputs = statuses.join(ids, on="condition_id", how="semi")
        self.per_shard[shard] = count_statuses(inputs)
        self.troubled[shard] = pl.concat([inputs.filter(pl.col("status") == status).head(MAX_LISTED) for status in (FAILED, MALFORMED)])

    def add_rest(self, files: PayoutFiles, shards: list[str] | tuple[str, ...] = ()) -> None:
        """Add `shards` and every shard with an input not added yet."""
        for shard in [*shards, *_fetched_shards(files)]:
            if shard not in self.per_shard:
                self.add(files, shard)

    def result(
        self, min_resolved_share: float, files: PayoutFiles, clickhouse: ClickHouseResource | None = None
    ) -> dg.AssetCheckResult:
        """ERROR while an input id lacks exactly one status; WARN below `min_resolved_share` resolved."""
        counts = {status: sum(shard[status] for shard in self.per_shard.values()) for status in STATUSES}
        unaccounted, duplicated = self.unaccounted, self.duplicated
        valid_ids = sum(counts.values()) + len(unaccounted)
        share = counts[RESOLVED] / valid_ids if valid_ids else 0.0
        metadata = {
            "coverage": round(share, 4),
            "valid_input_ids": valid_ids,
            **counts,
            "invalid_lines": input_counts(files, clickhouse)[1],
            "ids_without_status": len(unaccounted),
            "first_ids_without_status": id_list(unaccounted),
            "ids_with_two_statuses": id_list(duplicated),
        }
        if unaccounted or duplicated:
            return dg.AssetCheckResult(asset_key=ASSET, check_name="coverage_vs_input", passed=False, metadata=metadata)
        return dg.AssetCheckResult(
            asset_key=ASSET,
            check_name="coverage_vs_input",
            passed=share >= min_resolved_share,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={**metadata, "min_resolved_share": min_resolved_share},
        )


def coverage_vs_input(
    files: PayoutFiles, min_resolved_share: float, clickhouse: ClickHouseResource | None = None
) -> dg.AssetCheckResult:
    """Every shard's coverage at once (the fetch adds its own shards as they are written)."""
    coverage = Coverage()
    coverage.add_rest(files)
    return coverage.result(min_resolved_share, files, clickhouse)


def fetch_health(files: PayoutFiles, run_id: str, coverage: Coverage) -> dg.AssetCheckResult:
    """This run's requests and failures: ERROR while an id it fetched is failed; WARN on retries
    past 1 %, malformed values or unasked-for entities. Other shards' last figures are listed
    apart, labelled with the run that wrote them, and never added in. The failed and malformed
    ids are `coverage`'s, which has read every shard."""
    per_shard = [{"shard": shard, **files.read("fetch_stats", shard).row(0, named=True)} for shard in SHARDS if files.exists("fetch_stats", shard)]
    this_run = [row for row in per_shard if row.get("run_id") == run_id]
    earlier = [{**row, "run_id": row.get("run_id") or "unknown"} for row in per_shard if row.get("run_id") != run_id]
    totals = {key: sum(row[key] for row in this_run) for key in ("requests", "retries", "rate_limited", "unrequested_entities")}
    shards = [row["shard"] for row in this_run]
    count = {status: sum(coverage.per_shard[shard][status] for shard in shards) for status in (FAILED, MALFORMED)}
    troubled = pl.concat([coverage.troubled[shard] for shard in shards] or [pl.DataFrame(schema=TROUBLED_SCHEMA)])
    failed, malformed = troubled.filter(pl.col("status") == FAILED), troubled.filter(pl.col("status") == MALFORMED)
    retry_share = totals["retries"] / totals["requests"] if totals["requests"] else 0.0
    columns = ["shard", "ids_fetched", "requests", "retries", "rate_limited", "failed_ids", "unrequested_entities"]
    metadata = {
        **totals,
        "retry_share": round(retry_share, 4),
        "shards_fetched_by_this_run": len(this_run),
        "failed": count[FAILED],
        "first_failed_ids": id_list(failed["condition_id"]),
        "malformed": count[MALFORMED],
        "first_malformed": id_list(f"{cid}: {reason}" for cid, reason in malformed.select("condition_id", "reason").iter_rows()),
        "per_shard": markdown_table(this_run, columns),
        "earlier_runs_per_shard": markdown_table(earlier, ["run_id", *columns]),
    }
    if count[FAILED]:
        return dg.AssetCheckResult(asset_key=ASSET, check_name="fetch_health", passed=False, metadata=metadata)
    suspicious = retry_share > RETRY_WARN_SHARE or count[MALFORMED] or totals["unrequested_entities"]
    return dg.AssetCheckResult(
        asset_key=ASSET, check_name="fetch_health", passed=not suspicious, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
    )
