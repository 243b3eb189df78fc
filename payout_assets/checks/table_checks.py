"""Completion checks on `default.resolutions_external_ingest` (through its Distributed table where there is one),
read with FINAL (and every version, for uniqueness).

Whole-table checks: a single-run backfill records check results without a partition, so
the per-shard picture lives in the metadata.
"""

import math
from collections.abc import Iterator
from functools import partial

import dagster as dg
import polars as pl
from clickhouse_connect.driver.client import Client

from payout_assets.checks.outcome import logged
from payout_assets import load
from payout_assets.metadata import MAX_LISTED, id_list, markdown_table
from payout_assets.partitions import AFTER_EVERY_ID, IN_ID_RANGE, SHARDS, id_range, shard_groups
from payout_assets.core.payouts import EXPECTED_VECTORS
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.run_lock import RunLock
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.core.statuses import RESOLVED
from payout_assets.view import payout_fraction

EARLIEST_RESOLUTION = "2020-01-01 00:00:00"
GROUP_ROWS = 30_000  # stored rows a grouping by id reads at a time

_spec = dict(asset=load.SPEC.key)
SPECS = [
    dg.AssetCheckSpec("total_payouts", description="Every resolved id fetched is in the table.", **_spec),
    dg.AssetCheckSpec("payout_sums", description="Numerators sum to a positive denominator.", **_spec),
    dg.AssetCheckSpec("winning_index", description="The index of the first maximum numerator.", **_spec),
    dg.AssetCheckSpec("resolved_dates", description="Between 2020-01-01 and now.", **_spec),
    dg.AssetCheckSpec("unique_condition_ids", description="One row per 64-hex id under FINAL; every version of an id has one payout.", **_spec),
    dg.AssetCheckSpec("payout_shape", description="Only vectors Polymarket's UMA adapter reports.", **_spec),
]


def _result(name: str, passed: bool, metadata: dict, warn: bool = False) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckResult(check_name=name, passed=passed, severity=severity, metadata=metadata)


def _rows(client: Client, sql: str, parameters: dict[str, str] | None = None) -> list[tuple]:
    return client.query(sql, parameters=parameters).result_rows


# An id's eight 32-bit words, by where they start in its hex text.
WORD_STARTS = range(0, 64, 8)
STORED_DIGESTS = "substring(condition_id, 1, 1) AS shard, count(), " + ", ".join(
    f"sum(reinterpretAsUInt32(reverse(unhex(substring(condition_id, {start + 1}, 8)))))" for start in WORD_STARTS
)


def id_digests(ids: pl.DataFrame) -> dict[str, tuple[int, ...]]:
    """Per shard, the number of ids and the sum of each of their eight 32-bit words: equal for
    the same set of ids in any order, and what STORED_DIGESTS makes ClickHouse compute."""
    words = [pl.col("condition_id").str.slice(start, 8).str.to_integer(base=16).sum().alias(f"word_{start}") for start in WORD_STARTS]
    digests = ids.group_by(pl.col("condition_id").str.slice(0, 1).alias("shard")).agg(pl.len(), *words)
    return {shard: tuple(map(int, digest)) for shard, *digest in digests.iter_rows()}


def total_payouts(client: Client, files: PayoutFiles, table: str) -> dg.AssetCheckResult:
    """Shards whose stored ids have the digest of their resolved ids hold them all; only the ids
    of the others come to Python to be compared (at 2,000,000 ids, bringing every shard's ids
    over kept about 100 MB in chDB, measured alone, and raised a run's peak by 25 MB)."""
    per_shard, missing_ids, missing_count = [], [], 0
    resolved_ids = partial(files.input_statuses, columns=["condition_id"], where=pl.col("status") == RESOLVED)
    # A shard, or a few small ones, at a time: memory does not grow with the table.
    for group, resolved in shard_groups(SHARDS, files.input_count, resolved_ids, GROUP_ROWS):
        stored = {shard: tuple(digest) for shard, *digest in _rows(
            client, f"SELECT {STORED_DIGESTS} FROM {table} FINAL WHERE {IN_ID_RANGE} GROUP BY shard", id_range(group))}
        fetched = id_digests(resolved)
        for shard in group:
            ids, rows = fetched.get(shard, (0,)), stored.get(shard, (0,))
            missing = pl.Series("condition_id", [], pl.String)
            if ids[0] and ids != rows:
                loaded = pl.from_arrow(client.query_arrow(
                    f"SELECT condition_id FROM {table} FINAL WHERE {IN_ID_RANGE}", parameters=id_range([shard])
                )).cast(pl.String)
                in_shard = resolved.filter(pl.col("condition_id").str.starts_with(shard))
                missing = in_shard.join(loaded, on="condition_id", how="anti")["condition_id"]
            per_shard.append({"shard": shard, "resolved_fetched": ids[0], "rows": rows[0], "missing": missing.len()})
            missing_count += missing.len()
            missing_ids += missing.head(MAX_LISTED - len(missing_ids)).to_list()
    [(unique_conditions,)] = _rows(client, f"SELECT count() FROM {table} FINAL")
    [(total_rows,)] = _rows(client, f"SELECT count() FROM {table}")
    return _result(
        "total_payouts",
        not missing_count,
        {
            "unique_conditions": unique_conditions,
            "total_rows_before_merge": total_rows,
            "pre_merge_duplicates": total_rows - unique_conditions,
            "missing_resolved_ids": missing_count,
            "first_missing_ids": id_list(missing_ids),
            "per_shard": markdown_table(per_shard, ["shard", "resolved_fetched", "rows", "missing"]),
        },
    )


def payout_sums(client: Client, table: str) -> dg.AssetCheckResult:
    groups = _rows(
        client,
        f"SELECT payout_denominator, arraySum(payout_numerators) AS total, count() FROM {table} FINAL "
        "GROUP BY 1, 2 ORDER BY 3 DESC",
    )
    offenders = _rows(
        client,
        f"SELECT condition_id FROM {table} FINAL "
        "WHERE payout_denominator = 0 OR arraySum(payout_numerators) != payout_denominator LIMIT 20",
    )
    bad = sum(n for den, total, n in groups if den == 0 or den != total)
    rows = [{"denominator": den, "sum": total, "rows": n} for den, total, n in groups]
    return _result(
        "payout_sums",
        bad == 0,
        {"bad_rows": bad, "groups": markdown_table(rows, ["denominator", "sum", "rows"]), "first_bad_ids": id_list(r[0] for r in offenders)},
    )


def winning_index(client: Client, table: str) -> dg.AssetCheckResult:
    where = (
        "winning_index < 0 OR winning_index >= length(payout_numerators) "
        "OR winning_index != indexOf(payout_numerators, arrayMax(payout_numerators)) - 1"
    )
    [(bad,)] = _rows(client, f"SELECT count() FROM {table} FINAL WHERE {where}")
    offenders = _rows(client, f"SELECT condition_id, winning_index, payout_numerators FROM {table} FINAL WHERE {where} LIMIT 20")
    return _result("winning_index", bad == 0, {"bad_rows": bad, "first_bad_rows": id_list(offenders)})


def resolved_dates(client: Client, table: str) -> dg.AssetCheckResult:
    where = f"resolved_at > now() OR resolved_at < toDateTime('{EARLIEST_RESOLUTION}') OR toUnixTimestamp(resolved_at) = 0"
    [(bad, earliest, latest, from_subgraph, from_chain, from_fetch)] = _rows(
        client,
        f"SELECT countIf({where}), min(resolved_at), max(resolved_at), countIf(resolved_at_source = 'subgraph'), "
        f"countIf(resolved_at_source = 'chain'), countIf(resolved_at_source = 'fetch_time') FROM {table} FINAL",
    )
    offenders = _rows(client, f"SELECT condition_id, resolved_at FROM {table} FINAL WHERE {where} LIMIT 20")
    return _result(
        "resolved_dates",
        bad == 0,
        {
            "bad_rows": bad,
            "earliest": str(earliest),
            "latest": str(latest),
            "from_subgraph": from_subgraph,
            "from_chain": from_chain,
            "from_fetch_time": from_fetch,
            "first_bad_rows": id_list(offenders),
        },
    )


def id_ranges(rows: int) -> list[dict[str, str]]:
    """Consecutive ranges of ids (`low` <= id < `high`, as the table sorts them) of about
    GROUP_ROWS rows each, for grouping by id a range at a time: ClickHouse's memory for a
    grouping follows its rows (at 2,000,000 ids, +135 MB grouped a shard at a time, +28 MB in
    ranges of 6,000 rows). Ranges of 30,000 rows stay below the load's peak that precedes them,
    in half the time of 10,000-row ones (1.7 s against 3.0 s just after a 2,000,000-id load);
    one range is one query however small the table."""
    count = min(max(1, math.ceil(rows / GROUP_ROWS)), 16**4)
    bounds = [f"{i * 16**4 // count:04x}" for i in range(count)] + [AFTER_EVERY_ID]
    return [{"low": low, "high": high} for low, high in zip(bounds, bounds[1:])]


def unique_condition_ids(client: Client, table: str) -> dg.AssetCheckResult:
    """One row per id under FINAL, and one payout across every stored version: FINAL alone
    shows one row per id by construction and would hide a version that says otherwise."""
    malformed = _rows(client, f"SELECT DISTINCT condition_id FROM {table} WHERE NOT match(condition_id, '^[0-9a-f]{{64}}$') LIMIT 20")
    duplicates, disagreeing = [], []
    [(rows,)] = _rows(client, f"SELECT count() FROM {table}")
    for bounds in id_ranges(rows):
        duplicates += client.query(
            f"SELECT condition_id, count() FROM {table} FINAL WHERE {IN_ID_RANGE} GROUP BY 1 HAVING count() > 1 LIMIT 20",
            parameters=bounds,
        ).result_rows
        versions = client.query(
            f"SELECT condition_id, groupArray((version, payout_numerators, payout_denominator)) FROM {table} "
            f"WHERE {IN_ID_RANGE} GROUP BY condition_id HAVING uniqExact(payout_numerators, payout_denominator) > 1 "
            "ORDER BY condition_id",
            parameters=bounds,
        ).result_rows
        disagreeing += [(cid, sorted(rows)) for cid, rows in versions if len({payout_fraction(n, d) for _, n, d in rows}) > 1]
    return _result(
        "unique_condition_ids",
        not duplicates and not malformed and not disagreeing,
        {
            "duplicated_ids": id_list(r[0] for r in duplicates),
            "malformed_ids": id_list(r[0] for r in malformed),
            "ids_whose_versions_disagree": len(disagreeing),
            "first_disagreeing_versions": id_list(
                f"{cid}: " + ", ".join(f"version {v} {list(n)}/{d}" for v, n, d in rows) for cid, rows in disagreeing
            ),
        },
    )


def payout_shape(client: Client, table: str) -> dg.AssetCheckResult:
    vectors = _rows(client, f"SELECT payout_numerators, count(), any(condition_id) FROM {table} FINAL GROUP BY 1 ORDER BY 2 DESC")
    unusual = [(nums, n, example) for nums, n, example in vectors if tuple(nums) not in EXPECTED_VECTORS]
    return _result(
        "payout_shape",
        not unusual,
        {
            "unusual_rows": sum(n for _, n, _ in unusual),
            "vectors": markdown_table([{"vector": v, "rows": n, "example": e} for v, n, e in vectors[:20]], ["vector", "rows", "example"]),
        },
        warn=True,
    )


@dg.multi_asset_check(specs=SPECS, pool="clickhouse")
def table_checks(
    context: dg.AssetCheckExecutionContext, clickhouse: ClickHouseResource, files: PayoutFiles, run_lock: RunLock
) -> Iterator[dg.AssetCheckResult]:
    """The seed's completion validations 1-4, plus uniqueness and payout shape."""
    table = clickhouse.layout.reads
    with clickhouse.get_client() as client:
        by_table = (payout_sums, winning_index, resolved_dates, unique_condition_ids, payout_shape)
        yield from logged(context, [total_payouts(client, files, table), *(check(client, table) for check in by_table)])
