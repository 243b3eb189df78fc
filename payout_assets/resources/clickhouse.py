"""ClickHouse through clickhouse-connect: an embedded chDB directory or a server."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import clickhouse_connect
import dagster as dg
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from pydantic import Field

from payout_assets.target_table import TableLayout

CHDB_SCHEME = "chdb://"
SCHEMES = (CHDB_SCHEME, "http://", "https://")
ACCEPTED_FORMS = "chdb:///absolute/dir (embedded), http://user:password@host:8123/db or https://user:password@host:8443/db"
# Run launchers whose runs are processes of this machine: the ones `dagster dev`, the CLI and
# tests use. Any other starts runs in containers or elsewhere, each with its own empty chDB.
LAPTOP_LAUNCHERS = (dg.DefaultRunLauncher, SyncInMemoryRunLauncher)


class ClickHouseUnavailable(RuntimeError):
    """ClickHouse cannot be reached or opened; the message names where, never a password."""


class ClickHouseUrlRefused(ValueError):
    """CLICKHOUSE_URL has no explicit scheme (guessing one could send the table to another
    server), or names a chDB directory that some runs would not share."""


def check_scheme(url: str) -> None:
    if not url.startswith(SCHEMES):
        shown = "a value holding '@' (not shown: it may hold a password)" if "@" in url else repr(url)
        raise ClickHouseUrlRefused(f"CLICKHOUSE_URL {shown} has no accepted scheme; use {ACCEPTED_FORMS}")
    if url.startswith(CHDB_SCHEME) and not Path(url[len(CHDB_SCHEME):]).is_absolute():
        raise ClickHouseUrlRefused(
            f"CLICKHOUSE_URL {url!r} names a relative chDB directory, which each run would find in its own working "
            f"directory; use {ACCEPTED_FORMS}"
        )


def check_embedded_allowed(url: str, instance: dg.DagsterInstance | None) -> None:
    """chDB only where every run is a process of this machine, sharing its directory."""
    if not url.startswith(CHDB_SCHEME) or instance is None or isinstance(instance.run_launcher, LAPTOP_LAUNCHERS):
        return
    raise ClickHouseUrlRefused(
        f"CLICKHOUSE_URL is the embedded chDB directory {url[len(CHDB_SCHEME):]}, but this Dagster instance launches "
        f"runs with {type(instance.run_launcher).__name__}: each run would write to a chDB of its own that no other "
        "run, check or P&L query sees. Set CLICKHOUSE_URL to your ClickHouse server "
        "(http://user:password@host:8123/db or https://user:password@host:8443/db, e.g. ClickHouse Cloud)."
    )


@dataclass(frozen=True)
class ServerUrl:
    """`http(s)://user:password@host:port/db`, where the password may hold any character.

    The credentials end at the last `@`, so a password with `@`, `#` or `/` (raw or
    percent-encoded) neither breaks parsing nor leaks into a message.
    """

    scheme: str
    username: str
    password: str
    host_part: str  # host:port/db

    @classmethod
    def parse(cls, url: str) -> "ServerUrl":
        scheme, _, rest = url.partition("://")
        credentials, at, host_part = rest.rpartition("@")
        if not at:
            credentials, host_part = "", rest
        username, _, password = credentials.partition(":")
        return cls(scheme, unquote(username), unquote(password), host_part)

    @property
    def redacted(self) -> str:
        user = quote(self.username) + (":***" if self.password else "")
        return f"{self.scheme}://{user + '@' if user else ''}{self.host_part}"


def redact(text: str, url: str) -> str:
    """`text` with the URL's password replaced, fit for logs and metadata."""
    parsed = ServerUrl.parse(url)
    if not parsed.password:
        return text
    for secret in {parsed.password, quote(parsed.password, safe=""), quote(parsed.password)}:
        text = text.replace(secret, "***")
    return text


class ClickHouseResource(dg.ConfigurableResource):
    """Short-lived clickhouse-connect clients for `CLICKHOUSE_URL`.

    `chdb:///abs/dir` opens the embedded engine, which one process at a time may hold:
    each client closes on leaving the block, so steps and runs never hold it at once.

        with clickhouse.get_client() as client:
            client.query("SELECT count() FROM default.resolutions_external_ingest FINAL")
    """

    url: str = Field(
        description="chdb:///abs/dir for embedded ClickHouse, or http(s)://user:pass@host:port/db for a server."
    )
    cluster: str | None = Field(default=None, description="Cluster name (CLICKHOUSE_CLUSTER): our DDL runs ON CLUSTER it.")
    table_engine: str = Field(
        default="ReplacingMergeTree",
        description="Engine the target table is created with (CLICKHOUSE_TABLE_ENGINE): ReplacingMergeTree "
        "(one server, chDB, ClickHouse Cloud) or ReplicatedReplacingMergeTree (a cluster).",
    )
    distributed_table: str | None = Field(
        default=None,
        description="Distributed table over the target table (CLICKHOUSE_DISTRIBUTED_TABLE), created if missing: "
        "the load writes to it and the view and checks read through it.",
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        check_scheme(self.url)  # refused before any step runs
        check_embedded_allowed(self.url, context.instance)
        _ = self.layout  # and so are contradicting layout settings

    @property
    def layout(self) -> TableLayout:
        return TableLayout(self.cluster, self.table_engine, self.distributed_table)

    @property
    def is_embedded(self) -> bool:
        return self.url.startswith(CHDB_SCHEME)

    @property
    def embedded_directory(self) -> Path:
        return Path(self.url[len(CHDB_SCHEME):]).resolve()

    @property
    def display_url(self) -> str:
        return self.url if self.is_embedded else ServerUrl.parse(self.url).redacted

    @contextmanager
    def get_client(self) -> Iterator[Client]:
        client = self._open()
        try:
            yield client
        finally:
            client.close()

    def _open(self) -> Client:
        check_scheme(self.url)
        try:
            if self.is_embedded:
                self.embedded_directory.mkdir(parents=True, exist_ok=True)
                return clickhouse_connect.get_client(dsn=f"{CHDB_SCHEME}{self.embedded_directory}")
            return _server_client(self.url)
        except (ClickHouseError, OSError, RuntimeError, ValueError) as error:
            raise ClickHouseUnavailable(self._explain(error)) from None

    def _explain(self, error: Exception) -> str:
        text = redact(str(error), self.url)
        if self.is_embedded and ("EmbeddedServer" in text or "lock" in text.lower()):
            return (
                f"the embedded ClickHouse directory {self.display_url} is in use by another process "
                "(another run, or a Python shell holding it open); wait for it to finish and retry"
            )
        return f"cannot connect to ClickHouse at {self.display_url}: {text}"


def _server_client(url: str) -> Client:
    server = ServerUrl.parse(url)
    parts = urlsplit(f"{server.scheme}://{server.host_part}")
    return clickhouse_connect.get_client(
        host=parts.hostname,
        port=parts.port,
        username=server.username or "default",
        password=server.password,
        database=parts.path.strip("/") or "default",
        secure=server.scheme == "https",
    )
