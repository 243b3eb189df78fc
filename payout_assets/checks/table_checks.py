"""Completion checks on `default.resolutions_external_ingest` (through its Distributed table where there is one),
read with FINAL (and every version, for uniqueness).

They are checks of the `goldsky_payouts` op, on its asset `resolutions_external_ingest`, and
read the table an id range at a time: the op's loader reads each group of shards right after
inserting it, while the later shards' answers are still awaited, and `TableChecks.results`
reads the rest (the shards this run did not load, and any id outside them) at the end.

Whole-table checks: a single-run backfill records check results without a partition, so
the per-shard picture lives in the metadata.
"""

import math
from collections import Counter
from datetime import datetime
from functools import partial

import dagster as dg
import polars as pl
from clickhouse_connect.driver.client import Client

from payout_assets import load
from payout_assets.metadata import MAX_LISTED, id_list, markdown_table
from payout_assets.partitions import AFTER_EVERY_ID, IN_ID_RANGE, SHARDS, consecutive_groups, id_range
from payout_assets.core.id_digests import STORED_DIGESTS, Digests, id_digests
from payout_assets.core.payouts import EXPECTED_VECTORS
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

# The rows of no shard: ids that do not start with a hex digit.
OUTSIDE_SHARDS = f"NOT ({IN_ID_RANGE})"
EVERY_SHARD = {"low": SHARDS[0], "high": AFTER_EVERY_ID}
BAD_SUM = "payout_denominator = 0 OR arraySum(payout_numerators) != payout_denominator"
BAD_WINNING = (
    "winning_index < 0 OR winning_index >= length(payout_numerators) "
    "OR winning_index != indexOf(payout_numerators, arrayMax(payout_numerators)) - 1"
)
BAD_DATE = f"resolved_at > now() OR resolved_at < toDateTime('{EARLIEST_RESOLUTION}') OR toUnixTimestamp(resolved_at) = 0"
DATE_SOURCES = ("subgraph", "chain", "fetch_time")


def _result(name: str, passed: bool, metadata: dict, warn: bool = False) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.WARN if warn else dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckResult(asset_key=load.SPEC.key, check_name=name, passed=passed, severity=severity, metadata=metadata)


def id_ranges(group: list[str], rows: int) -> list[dict[str, str]]:
    """The ids of consecutive shards (`id_range`) cut at 4-hex-digit prefixes into ranges of
    about GROUP_ROWS stored rows each, for grouping by id a range at a time: ClickHouse's memory
    for a grouping follows its rows (at 2,000,000 ids, +135 MB grouped a shard at a time, +28 MB
    in ranges of 6,000 rows). Ranges of 30,000 rows stay below the load's peak, in half the time
    of 10,000-row ones (1.7 s against 3.0 s just after a 2,000,000-id load); one range is one
    query however few the rows."""
    bounds = id_range(group)
    first, end = SHARDS.index(group[0]) * 16**3, (SHARDS.index(group[-1]) + 1) * 16**3
    count = min(max(1, math.ceil(rows / GROUP_ROWS)), end - first)
    cuts = [bounds["low"], *(f"{first + i * (end - first) // count:04x}" for i in range(1, count)), bounds["high"]]
    return [{"low": low, "high": high} for low, high in zip(cuts, cuts[1:])]


class TableChecks:
    """The six checks, added up an id range at a time: `add` reads a group of consecutive shards
    (their rows in the table, and their resolved ids on disk); `results` reads what no `add`
    did and gives the six results. Memory follows a group, not the table."""

    def __init__(self, files: PayoutFiles, table: str) -> None:
        self.files, self.table = files, table
        self.read_shards: set[str] = set()
        self.rows: Counter[str] = Counter()  # "final" (one per id) and "stored" (every version)
        self.per_shard: list[dict] = []  # total_payouts
        self.missing_ids: list[str] = []
        self.missing = 0
        self.sums: Counter[tuple[int, int]] = Counter()  # payout_sums: rows by (denominator, numerators' sum)
        self.bad_sum_ids: list[str] = []
        self.bad: Counter[str] = Counter()  # winning_index and resolved_dates: bad rows; and rows by date source
        self.bad_winning_rows: list[tuple] = []
        self.bad_date_rows: list[tuple] = []
        self.earliest: datetime | None = None
        self.latest: datetime | None = None
        self.malformed: list[str] = []  # unique_condition_ids
        self.duplicated: list[str] = []
        self.disagreeing: list[tuple[str, list]] = []
        self.vectors: dict[tuple, list] = {}  # payout_shape: vector -> [rows, an example id]

    def add(self, client: Client, group: list[str], fetched: Digests | None = None) -> None:
        """Read the rows of the group's consecutive shards, and compare their ids with the resolved
        ids on disk (`fetched`: their digests, from a caller that read them, as the load does)."""
        self._compare_ids(client, group, fetched)
        bounds = id_range(group)
        [(stored,)] = client.query(f"SELECT count() FROM {self.table} WHERE {IN_ID_RANGE}", parameters=bounds).result_rows
        self._read(client, IN_ID_RANGE, bounds, [(IN_ID_RANGE, sub) for sub in id_ranges(group, stored)])
        self.read_shards.update(group)

    def results(self, client: Client) -> list[dg.AssetCheckResult]:
        """Read the shards not added yet and the ids of no shard; then the six results."""
        rest = [shard for shard in SHARDS if shard not in self.read_shards]
        for group in consecutive_groups(rest, self.files.input_count, GROUP_ROWS):
            self.add(client, group)
        [(outside,)] = client.query(f"SELECT count() FROM {self.table} WHERE {OUTSIDE_SHARDS}", parameters=EVERY_SHARD).result_rows
        if outside:
            self._read(client, OUTSIDE_SHARDS, EVERY_SHARD, [(OUTSIDE_SHARDS, EVERY_SHARD)])
        return [self._total_payouts(), self._payout_sums(), self._winning_index(), self._resolved_dates(),
                self._unique_condition_ids(), self._payout_shape()]

    def _compare_ids(self, client: Client, group: list[str], fetched: Digests | None) -> None:
        """Shards whose stored ids have the digest of their resolved ids hold them all; only the
        ids of the others come to Python to be compared (at 2,000,000 ids, bringing every shard's
        ids over kept about 100 MB in chDB, measured alone, and raised a run's peak by 25 MB).
        Reading the resolved ids here again after the load read them was the load's peak: +30 MB."""
        read = partial(self.files.input_statuses, columns=["condition_id"], where=pl.col("status") == RESOLVED)
        if fetched is None:
            fetched = id_digests(pl.concat([read(shard) for shard in group]))
        stored = {shard: tuple(digest) for shard, *digest in client.query(
            f"SELECT {STORED_DIGESTS} FROM {self.table} FINAL WHERE {IN_ID_RANGE} GROUP BY shard", parameters=id_range(group)
        ).result_rows}
        for shard in group:
            ids, rows = fetched.get(shard, (0,)), stored.get(shard, (0,))
            missing = pl.Series("condition_id", [], pl.String)
            if ids[0] and ids != rows:
                loaded = pl.from_arrow(client.query_arrow(
                    f"SELECT condition_id FROM {self.table} FINAL WHERE {IN_ID_RANGE}", parameters=id_range([shard])
                )).cast(pl.String)
                missing = read(shard).join(loaded, on="condition_id", how="anti")["condition_id"]
            self.per_shard.append({"shard": shard, "resolved_fetched": ids[0], "rows": rows[0], "missing": missing.len()})
            self.missing += missing.len()
            self.missing_ids += missing.head(MAX_LISTED - len(self.missing_ids)).to_list()

    def _read(self, client: Client, where: str, parameters: dict, ranges: list[tuple[str, dict]]) -> None:
        """Every check's counts over the rows `where` holds for; the grouping by id over `ranges`."""
        def rows(sql: str, bounds: dict = parameters) -> list[tuple]:
            return client.query(sql.format(table=self.table, where=where), parameters=bounds).result_rows

        [(final, stored, bad_winning, bad_date, earliest, latest, *sources)] = rows(
            "SELECT count(), (SELECT count() FROM {table} WHERE {where}), "
            f"countIf({BAD_WINNING}), countIf({BAD_DATE}), min(resolved_at), max(resolved_at), "
            + ", ".join(f"countIf(resolved_at_source = '{source}')" for source in DATE_SOURCES)
            + " FROM {table} FINAL WHERE {where}"
        )
        self.rows.update(final=final, stored=stored)
        self.bad.update(winning=bad_winning, date=bad_date, **dict(zip(DATE_SOURCES, sources)))
        if final:
            self.earliest = min(self.earliest or earliest, earliest)
            self.latest = max(self.latest or latest, latest)
        if bad_winning:
            self.bad_winning_rows += rows(f"SELECT condition_id, winning_index, payout_numerators FROM {{table}} FINAL WHERE ({{where}}) AND ({BAD_WINNING}) LIMIT {MAX_LISTED}")
        if bad_date:
            self.bad_date_rows += rows(f"SELECT condition_id, resolved_at FROM {{table}} FINAL WHERE ({{where}}) AND ({BAD_DATE}) LIMIT {MAX_LISTED}")
        sums = rows("SELECT payout_denominator, arraySum(payout_numerators), count() FROM {table} FINAL WHERE {where} GROUP BY 1, 2")
        self.sums.update({(den, total): n for den, total, n in sums})
        if any(den == 0 or den != total for den, total, _ in sums):
            self.bad_sum_ids += [r[0] for r in rows(f"SELECT condition_id FROM {{table}} FINAL WHERE ({{where}}) AND ({BAD_SUM}) LIMIT {MAX_LISTED}")]
        for vector, n, example in rows("SELECT payout_numerators, count(), any(condition_id) FROM {table} FINAL WHERE {where} GROUP BY 1"):
            self.vectors.setdefault(tuple(vector), [0, example])[0] += n
        self._group_by_id(client, where, parameters, ranges)

    def _group_by_id(self, client: Client, where: str, parameters: dict, ranges: list[tuple[str, dict]]) -> None:
        """One row per well-formed id under FINAL, and one payout across every stored version:
        FINAL alone shows one row per id by construction and would hide a version that says otherwise."""
        self.malformed += [r[0] for r in client.query(
            f"SELECT DISTINCT condition_id FROM {self.table} WHERE ({where}) AND NOT match(condition_id, '^[0-9a-f]{{64}}$') LIMIT {MAX_LISTED}",
            parameters=parameters,
        ).result_rows]
        for range_where, bounds in ranges:
            self.duplicated += [r[0] for r in client.query(
                f"SELECT condition_id, count() FROM {self.table} FINAL WHERE {range_where} GROUP BY 1 HAVING count() > 1 LIMIT {MAX_LISTED}",
                parameters=bounds,
            ).result_rows]
            versions = client.query(
                f"SELECT condition_id, groupArray((version, payout_numerators, payout_denominator)) FROM {self.table} "
                f"WHERE {range_where} GROUP BY condition_id HAVING uniqExact(payout_numerators, payout_denominator) > 1 "
                "ORDER BY condition_id",
                parameters=bounds,
            ).result_rows
            self.disagreeing += [(cid, sorted(rows)) for cid, rows in versions if len({payout_fraction(n, d) for _, n, d in rows}) > 1]

    def _total_payouts(self) -> dg.AssetCheckResult:
        per_shard = sorted(self.per_shard, key=lambda row: SHARDS.index(row["shard"]))
        return _result(
            "total_payouts",
            not self.missing,
            {
                "unique_conditions": self.rows["final"],
                "total_rows_before_merge": self.rows["stored"],
                "pre_merge_duplicates": self.rows["stored"] - self.rows["final"],
                "missing_resolved_ids": self.missing,
                "first_missing_ids": id_list(self.missing_ids),
                "per_shard": markdown_table(per_shard, ["shard", "resolved_fetched", "rows", "missing"]),
            },
        )

    def _payout_sums(self) -> dg.AssetCheckResult:
        bad = sum(n for (den, total), n in self.sums.items() if den == 0 or den != total)
        rows = [{"denominator": den, "sum": total, "rows": n} for (den, total), n in self.sums.most_common()]
        return _result(
            "payout_sums",
            bad == 0,
            {"bad_rows": bad, "groups": markdown_table(rows, ["denominator", "sum", "rows"]), "first_bad_ids": id_list(self.bad_sum_ids)},
        )

    def _winning_index(self) -> dg.AssetCheckResult:
        bad = self.bad["winning"]
        return _result("winning_index", bad == 0, {"bad_rows": bad, "first_bad_rows": id_list(self.bad_winning_rows)})

    def _resolved_dates(self) -> dg.AssetCheckResult:
        bad = self.bad["date"]
        return _result(
            "resolved_dates",
            bad == 0,
            {
                "bad_rows": bad,
                "earliest": str(self.earliest),
                "latest": str(self.latest),
                "from_subgraph": self.bad["subgraph"],
                "from_chain": self.bad["chain"],
                "from_fetch_time": self.bad["fetch_time"],
                "first_bad_rows": id_list(self.bad_date_rows),
            },
        )

    def _unique_condition_ids(self) -> dg.AssetCheckResult:
        return _result(
            "unique_condition_ids",
            not self.duplicated and not self.malformed and not self.disagreeing,
            {
                "duplicated_ids": id_list(self.duplicated),
                "malformed_ids": id_list(self.malformed),
                "ids_whose_versions_disagree": len(self.disagreeing),
                "first_disagreeing_versions": id_list(
                    f"{cid}: " + ", ".join(f"version {v} {list(n)}/{d}" for v, n, d in rows) for cid, rows in self.disagreeing
                ),
            },
        )

    def _payout_shape(self) -> dg.AssetCheckResult:
        vectors = sorted(((list(vector), n, example) for vector, (n, example) in self.vectors.items()), key=lambda row: -row[1])
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
