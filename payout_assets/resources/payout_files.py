"""The project's own files: the input id file and the per-shard Parquet it derives."""

import json
import os
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from payout_assets.core.statuses import STATUS_SCHEMA
from payout_assets.core.subgraph import SubgraphInfo
from payout_assets.core.json_file import write_json

PROBE_FILE = "probe.json"
IDS_SCHEMA = {"condition_id": pl.String}
FETCH_STATS_SCHEMA = {
    "ids_fetched": pl.Int64,
    "requests": pl.Int64,
    "retries": pl.Int64,
    "rate_limited": pl.Int64,
    "failed_ids": pl.Int64,
    "unrequested_entities": pl.Int64,
    "seconds": pl.Float64,
    "run_id": pl.String,  # the run that wrote them: fetch_health adds up only its own run's
}


class PayoutFiles(dg.ConfigurableResource):
    """Where the input ids come from and where each shard's Parquet files live.

        files = PayoutFiles(input_ids_path="data/ids.txt", shards_dir="data/shards")
        files.write("statuses", "a", frame)
    """

    input_ids_path: str = Field(description="The input id file (PAYOUT_INPUT_IDS): one condition id per line.")
    shards_dir: str = Field(description="Directory for the per-shard Parquet files of ids, statuses and fetch stats.")
    input_sql: str | None = Field(
        default=None,
        description="Optional ClickHouse query whose first column holds more input ids (PAYOUT_INPUT_SQL), "
        "e.g. condition ids seen in trades that have no row in the truth view.",
    )

    def path(self, kind: str, shard: str) -> Path:
        return Path(self.shards_dir) / kind / f"shard={shard}.parquet"

    def write(self, kind: str, shard: str, frame: pl.DataFrame) -> None:
        """Atomic replace, so a crash leaves the previous file or the new one, never half."""
        target = self.path(kind, shard)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".parquet.partial")
        # zstd's fastest level: half the time of polars' default level, and no bigger here.
        frame.write_parquet(partial, compression="zstd", compression_level=1)
        os.replace(partial, target)

    def scan(self, kind: str, shard: str, columns: list[str] | None = None) -> pl.LazyFrame:
        """The shard's frame, lazily (only `columns`, when given); empty (with its schema) before the first write."""
        target = self.path(kind, shard)
        schema = {name: dtype for name, dtype in _SCHEMAS[kind].items() if columns is None or name in columns}
        if not target.exists():
            return pl.LazyFrame(schema=schema)
        present = [name for name in pl.read_parquet_schema(target) if name in schema]
        frame = pl.scan_parquet(target).select(present)
        # Files written before a column existed read it as null (statuses: "endpoint unknown").
        missing = [pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in present]
        return frame.with_columns(missing).select(list(schema)) if missing else frame

    def read(self, kind: str, shard: str, columns: list[str] | None = None) -> pl.DataFrame:
        return self.scan(kind, shard, columns).collect()

    def input_statuses(self, shard: str, columns: list[str] | None = None, where: pl.Expr | None = None) -> pl.DataFrame:
        """The statuses of the shard's current input ids (only those `where` holds for, and only
        `columns`, which hold condition_id, when given), filtered and projected as the Parquet is
        read: at 2,000,000 ids, a shard's resolved rows for the load take 50 MB this way, 66 MB read whole.
        Ids that left the input keep their status on disk (they may come back, and a resolved id
        is never fetched again), but are neither loaded nor counted as this input's."""
        statuses = self.scan("statuses", shard)
        if where is not None:
            statuses = statuses.filter(where)
        if columns is not None:
            statuses = statuses.select(columns)
        return statuses.join(self.scan("ids", shard), on="condition_id", how="semi").collect()

    def input_count(self, shard: str) -> int:
        """How many ids the shard's input holds, from its Parquet footer: a bound on its statuses' rows."""
        return self.scan("ids", shard).select(pl.len()).collect().item()

    def write_probe(self, run_id: str, info: SubgraphInfo) -> None:
        """What the pre-flight probe found, for the same run's fetch (`probe.json`, replaced atomically)."""
        write_json(Path(self.shards_dir) / PROBE_FILE, {"run_id": run_id, "subgraph": info.to_json()})

    def read_probe(self, run_id: str, endpoint: str) -> SubgraphInfo | None:
        """This run's probe of this endpoint; None when another run or endpoint wrote it (or none did)."""
        try:
            probe = json.loads((Path(self.shards_dir) / PROBE_FILE).read_text())
            info = SubgraphInfo.from_json(probe["subgraph"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return info if probe.get("run_id") == run_id and info.endpoint == endpoint else None

    def exists(self, kind: str, shard: str) -> bool:
        return self.path(kind, shard).exists()


_SCHEMAS = {"ids": IDS_SCHEMA, "statuses": STATUS_SCHEMA, "fetch_stats": FETCH_STATS_SCHEMA}
