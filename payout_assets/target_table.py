"""The target table: its shape, the DDL that creates it where ClickHouse runs, and the check
that an existing table has that shape (shared by the load and the `clickhouse_ready` check).

One server, embedded chDB and ClickHouse Cloud take the plain DDL (Cloud itself turns
`ReplacingMergeTree` into `SharedReplacingMergeTree`). On a self-managed cluster the DDL runs
`ON CLUSTER`, the table is usually `ReplicatedReplacingMergeTree`, and a `Distributed` table
in front of it, sharded by the condition id, is what the load writes to and everything reads.
"""

import re
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

TABLE = "default.resolutions_external_ingest"

# Seed columns and types first (downstream P&L queries read them), then provenance.
TABLE_COLUMNS = {
    "condition_id": "String",
    "payout_numerators": "Array(UInt32)",
    "payout_denominator": "UInt32",
    "winning_index": "Int32",
    "resolved_at": "DateTime",
    "source": "LowCardinality(String)",
    "resolved_at_source": "LowCardinality(String)",
    "fetched_at": "DateTime",
    "block_number": "UInt64",
    "version": "UInt64",
}
SORT_KEY = "condition_id"
VERSION_COLUMN = "version"
# Every version of an id on one shard: FINAL, which merges per shard, then keeps one row per id.
SHARDING_KEY = "cityHash64(condition_id)"
ENGINES = ("ReplacingMergeTree", "ReplicatedReplacingMergeTree")  # the engines we create
# Any of these keeps the newest version per sort key (Shared: ClickHouse Cloud).
REPLACING_FAMILY = re.compile(r"(Shared|Replicated)?ReplacingMergeTree")
EXPECTED_ENGINE = f"ReplacingMergeTree({VERSION_COLUMN}) or its Shared/Replicated variant"
_CLUSTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")


class TableLayoutError(ValueError):
    """The ClickHouse layout settings contradict each other; the message names the variable."""


@dataclass(frozen=True)
class TableLayout:
    """Where the target table lives, from CLICKHOUSE_CLUSTER, CLICKHOUSE_TABLE_ENGINE and
    CLICKHOUSE_DISTRIBUTED_TABLE.

        TableLayout()  # embedded chDB, one server, ClickHouse Cloud
        TableLayout("main", "ReplicatedReplacingMergeTree", "default.resolutions_external_ingest_all")
    """

    cluster: str | None = None
    engine: str = "ReplacingMergeTree"
    distributed_table: str | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise TableLayoutError(f"CLICKHOUSE_TABLE_ENGINE={self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.cluster is not None and not _CLUSTER_NAME.fullmatch(self.cluster):
            raise TableLayoutError(f"CLICKHOUSE_CLUSTER={self.cluster!r} is not a cluster name (letters, digits, _ and -)")
        if self.distributed_table is not None:
            if self.cluster is None:
                raise TableLayoutError("CLICKHOUSE_DISTRIBUTED_TABLE needs CLICKHOUSE_CLUSTER: a Distributed table spans a cluster")
            if not _TABLE_NAME.fullmatch(self.distributed_table) or self.distributed_table == TABLE:
                raise TableLayoutError(
                    f"CLICKHOUSE_DISTRIBUTED_TABLE={self.distributed_table!r} is not a database.table name other than {TABLE}"
                )

    @property
    def reads(self) -> str:
        """The table the load writes to and every query reads: the Distributed one where configured."""
        return self.distributed_table or TABLE

    @property
    def on_cluster(self) -> str:
        """The clause every DDL statement of ours carries: created, replaced or dropped on every node."""
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    @property
    def insert_settings(self) -> dict[str, int]:
        """A Distributed insert returns once every shard has its rows, so the checks read them all."""
        return {"distributed_foreground_insert": 1} if self.distributed_table else {}

    def create_statements(self) -> list[str]:
        """IF NOT EXISTS: a table already there is checked, never altered."""
        columns = ", ".join(f"{name} {kind}" for name, kind in TABLE_COLUMNS.items())
        statements = [
            f"CREATE TABLE IF NOT EXISTS {TABLE}{self.on_cluster} ({columns}) "
            f"ENGINE = {self.engine}({VERSION_COLUMN}) ORDER BY {SORT_KEY}"
        ]
        if self.distributed_table:
            database, name = TABLE.split(".")
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {self.distributed_table}{self.on_cluster} AS {TABLE} "
                f"ENGINE = Distributed('{self.cluster}', '{database}', '{name}', {SHARDING_KEY})"
            )
        return statements


def engine_arguments(engine_full: str) -> list[str]:
    """The top-level arguments of `Engine('a,b', f(c, d), e) ORDER BY …` as written; [] without any."""
    opening = re.match(r"\w+\(", engine_full)
    arguments: list[str] = []
    if opening is None:
        return arguments
    current, depth, quote, escaped = "", 0, "", False
    for char in engine_full[opening.end():]:
        if quote:
            escaped, quote = char == "\\" and not escaped, "" if char == quote and not escaped else quote
        elif char in "'`\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")" and depth == 0:
            break
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            arguments.append(current.strip())
            current = ""
            continue
        current += char
    return [*arguments, current.strip()] if current.strip() else arguments


def replacing_version(engine_full: str) -> str | None:
    """The version column of a ReplacingMergeTree-family engine, skipping the Replicated/Shared
    engines' quoted ZooKeeper path and replica name; None when it has no version column."""
    return next((argument for argument in engine_arguments(engine_full) if not argument.startswith("'")), None)


def column_differences(actual: dict[str, str]) -> list[str]:
    """Columns missing, of another type, or not ours, as `system.columns` lists them."""
    differences = [
        f"column {name} is {actual[name]}, expected {kind}" if name in actual else f"column {name} ({kind}) is missing"
        for name, kind in TABLE_COLUMNS.items()
        if actual.get(name) != kind
    ]
    return differences + [f"column {name} ({kind}) is not one of ours" for name, kind in actual.items() if name not in TABLE_COLUMNS]


def table_differences(columns: dict[str, str], engine: str, engine_full: str, sorting_key: str) -> list[str]:
    """How a table that `system.tables`/`system.columns` describe so differs from the target's shape.

    The engine's exact name is not compared: Cloud and clusters rename it.
    """
    differences = column_differences(columns)
    if not REPLACING_FAMILY.fullmatch(engine):
        differences.append(f"engine is {engine}, expected {EXPECTED_ENGINE}")
    elif (version := replacing_version(engine_full)) != VERSION_COLUMN:
        differences.append(f"engine {engine} has version column {version or 'none'}, expected {EXPECTED_ENGINE}")
    if sorting_key != SORT_KEY:
        differences.append(f"sort key is ({sorting_key or 'tuple()'}), expected ({SORT_KEY})")
    return differences


def distributed_differences(layout: TableLayout, columns: dict[str, str], engine: str, engine_full: str) -> list[str]:
    """How the configured Distributed table differs from one over the target table, on the
    configured cluster, keeping each condition id on one shard."""
    name = layout.distributed_table
    differences = [f"{name}: {difference}" for difference in column_differences(columns)]
    if engine != "Distributed":
        return [*differences, f"{name} has engine {engine}, expected Distributed"]
    arguments = engine_arguments(engine_full)
    cluster, database, table = (argument.strip("'") for argument in [*arguments, "", "", ""][:3])
    sharding_key = arguments[3] if len(arguments) > 3 else "none"
    if (cluster, f"{database}.{table}") != (layout.cluster, TABLE):
        differences.append(f"{name} reads {database}.{table} on cluster {cluster}, expected {TABLE} on cluster {layout.cluster}")
    if set(re.findall(r"\w+", sharding_key)) & set(TABLE_COLUMNS) != {SORT_KEY}:
        differences.append(
            f"{name} has sharding key {sharding_key}, expected a function of {SORT_KEY} alone such as {SHARDING_KEY} "
            "(FINAL merges per shard, so every version of an id must land on one shard)"
        )
    return differences


TableMetadata = tuple[dict[str, str], str, str, str]  # columns, engine, engine_full, sorting_key


def system_table(name: str, layout: TableLayout) -> str:
    """`system.<name>` of the node we are connected to, or of every replica of the cluster."""
    return f"clusterAllReplicas('{layout.cluster}', system.{name})" if layout.cluster else f"system.{name}"


def describe(client: Client, qualified_name: str, layout: TableLayout) -> dict[str, TableMetadata]:
    """Per node that has the table ('' without a cluster): its columns, engine, engine_full and sort key."""
    params = dict(zip(("db", "name"), qualified_name.split(".")))
    node = "hostName()" if layout.cluster else "''"
    columns: dict[str, dict[str, str]] = {}
    for host, name, kind in client.query(
        f"SELECT {node}, name, type FROM {system_table('columns', layout)} WHERE database = {{db:String}} AND table = {{name:String}}",
        parameters=params,
    ).result_rows:
        columns.setdefault(host, {})[name] = kind
    tables = client.query(
        f"SELECT {node}, engine, engine_full, sorting_key FROM {system_table('tables', layout)} "
        "WHERE database = {db:String} AND name = {name:String}",
        parameters=params,
    ).result_rows
    return {host: (columns.get(host, {}), engine, engine_full, sorting_key) for host, engine, engine_full, sorting_key in tables}


def node_differences(layout: TableLayout, targets: dict[str, TableMetadata], distributed: dict[str, TableMetadata]) -> list[str]:
    """The differences of every node's target (and Distributed) table, each named by its node on a cluster."""
    differences = []
    for host, target in targets.items():
        differences += [f"on {host}: {d}" if host else d for d in table_differences(*target)]
    for host, (columns, engine, engine_full, _) in distributed.items():
        differences += [f"on {host}: {d}" if host else d for d in distributed_differences(layout, columns, engine, engine_full)]
    return differences


def shape_differences(client: Client, layout: TableLayout) -> list[str]:
    """Every way the existing target table (and Distributed table) differs from the shape the load writes.

    The pre-flight check and the load both ask this; a difference stops them, since we
    never alter or drop a user's table and never write rows it would convert or collapse.
    A table not there yet differs in nothing: the load creates it. On a cluster every replica
    answers (`clusterAllReplicas`): a node whose own table of that name is another shape
    would otherwise receive rows through the Distributed table.
    """
    distributed = describe(client, layout.distributed_table, layout) if layout.distributed_table else {}
    return node_differences(layout, describe(client, TABLE, layout), distributed)


def table_exists(client: Client, qualified_name: str) -> bool:
    database, name = qualified_name.split(".")
    return bool(client.command("EXISTS TABLE {db:Identifier}.{name:Identifier}", parameters={"db": database, "name": name}))
