"""Every environment variable the project reads: its name, default and meaning, in one place.

The definitions hand them to resources as `EnvVar`s where set (so the UI shows the variable's
name, never its value); the sensor's schedule and the scripts read their values here.
Nothing else in the project reads `os.environ`.
"""

import math
import re
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg

from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.redaction import redact_url, rpc_display_url

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_DIR / "data"  # the checkout's: PAYOUT_DATA_DIR's default, where `make demo` works
PUBLIC_PNL_SUBGRAPH = (
    "https://api.goldsky.com/api/public/project_cl6mb8i9h0003e201j6li0diw/subgraphs/pnl-subgraph/0.0.14/gn"
)
POLYMARKET_CTF = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"  # Gnosis' Conditional Tokens on Polygon


class SettingError(ValueError):
    """A variable holds a value its setting cannot take; the message names the variable."""


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: a test, and the same in words for the error message."""

    holds: Callable[[object], bool]
    words: str


def _http_url(value: object) -> bool:
    try:
        parts = urlsplit(str(value))
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _number(low: float, high: float = math.inf, above: bool = False) -> Callable[[object], bool]:
    def holds(value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return False
        return (value > low if above else value >= low) and value <= high

    return holds


ABSOLUTE_PATH = Rule(lambda value: Path(str(value)).is_absolute(), "an absolute path (runs may start in any working directory)")
HTTP_URL = Rule(_http_url, "an http:// or https:// URL with a host")
RPC_URL = Rule(_http_url, "an http:// or https:// URL with a host (unset it to turn the chain source off)")
AT_LEAST_ONE = Rule(_number(1), "at least 1")
SECONDS_ABOVE_ZERO = Rule(_number(0, above=True), "a number of seconds above 0")
SECONDS = Rule(_number(0), "a number of seconds, 0 or more")


Default = str | int | float | None


@dataclass(frozen=True)
class Setting:
    variable: str
    default: Default | Callable[[Mapping[str, str]], Default]  # callable: derived from other settings
    meaning: str
    kind: type = str
    rule: Rule | None = None

    def value(self, environ: Mapping[str, str] | None = None) -> Default:
        """The variable's value as `kind`, checked by its rule, or the default where it is unset."""
        environ = os.environ if environ is None else environ
        if self.variable not in environ:
            return self.default(environ) if callable(self.default) else self.default
        raw = environ[self.variable]
        try:
            value = self.kind(raw)
        except ValueError:
            raise SettingError(f"{self.variable}={self.shown(raw)} is not {_KIND_NAMES[self.kind]}") from None
        self.check(value)
        return value

    def check(self, value: object) -> None:
        """Raise SettingError naming the variable when `value` breaks the rule."""
        if self.rule is not None and not self.rule.holds(value):
            raise SettingError(f"{self.variable} must be {self.rule.words}; it is {self.shown(value)}")

    def shown(self, value: object) -> str:
        """The value as a message may show it: a URL without its secrets."""
        if self.rule is RPC_URL:
            return rpc_display_url(str(value))
        return redact_url(str(value)) if self.rule is HTTP_URL else repr(value)

    def for_resource(self) -> object:
        """An EnvVar where the variable is set (resolved by Dagster at run time), else the default.
        A set value is checked now, so a bad one stops the code location's load, named.

        Dagster has no float EnvVar; float settings are never secret, so their value is used.
        """
        value = self.value()
        if self.variable not in os.environ or self.kind is float:
            return value
        return dg.EnvVar.int(self.variable) if self.kind is int else dg.EnvVar(self.variable)


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number"}


def _in_data_dir(name: str, prefix: str = "") -> Callable[[Mapping[str, str]], str]:
    """A default under PAYOUT_DATA_DIR, wherever that is."""
    return lambda environ: f"{prefix}{Path(SETTINGS['PAYOUT_DATA_DIR'].value(environ)) / name}"


SETTINGS: dict[str, Setting] = {
    s.variable: s
    for s in (
        Setting("GOLDSKY_URL", PUBLIC_PNL_SUBGRAPH, "subgraph GraphQL endpoint", str, HTTP_URL),
        Setting("GOLDSKY_API_KEY", None, "bearer token for a private endpoint; never logged"),
        Setting("GOLDSKY_RATE_LIMIT", 50, "requests that may start in any 10 s window", int, AT_LEAST_ONE),
        Setting("GOLDSKY_TIMEOUT_SECONDS", 30.0, "per-request timeout", float, SECONDS_ABOVE_ZERO),
        Setting("GOLDSKY_MAX_ATTEMPTS", 6, "attempts per request before its ids end `failed`", int, AT_LEAST_ONE),
        Setting("GOLDSKY_BACKOFF_SECONDS", 1.0, "first retry delay; doubles per attempt", float, SECONDS),
        Setting("GOLDSKY_MAX_BODY_BYTES", AnswerBounds.max_body_bytes, "longest answer body read; past it the request is retried",
                int, Rule(_number(1024, 2**31), "1024 to 2147483648 bytes")),
        Setting("GOLDSKY_MAX_RETRY_AFTER_SECONDS", AnswerBounds.max_retry_after_seconds,
                "longest Retry-After honoured; past it the request fails at once", float, SECONDS),
        Setting("GOLDSKY_MAX_REASON_CHARS", AnswerBounds.max_reason_chars, "longest stored reason", int,
                Rule(_number(20, 10_000), "20 to 10000")),
        Setting("GOLDSKY_MAX_NUMBER_DIGITS", AnswerBounds.max_number_digits, "most digits of an upstream number", int,
                Rule(_number(34, 4000), "34 (graph-node's digits) to 4000")),
        Setting("GOLDSKY_MAX_DECIMAL_EXPONENT", AnswerBounds.max_decimal_exponent,
                "largest power of ten, either sign, of a BigDecimal", int, Rule(_number(1, 4000), "1 to 4000")),
        Setting("PAYOUT_DATA_DIR", str(DATA_DIR), "directory the path defaults below live in", str, ABSOLUTE_PATH),
        Setting("CLICKHOUSE_URL", _in_data_dir("chdb", "chdb://"), "`chdb:///abs/dir` or `http(s)://user:pass@host:port/db`"),
        Setting("CLICKHOUSE_CLUSTER", None, "cluster name: the project's DDL runs `ON CLUSTER` it"),
        Setting("CLICKHOUSE_TABLE_ENGINE", "ReplacingMergeTree", "engine the target table is created with: ReplacingMergeTree or ReplicatedReplacingMergeTree"),
        Setting("CLICKHOUSE_DISTRIBUTED_TABLE", None, "`db.table` of a Distributed table over the target on the cluster: created if missing, written and read through"),
        Setting("PAYOUT_INPUT_IDS", _in_data_dir("condition_ids_missing_api.txt"), "the input id file", str, ABSOLUTE_PATH),
        Setting("PAYOUT_INPUT_SQL", None, "optional ClickHouse query whose first column adds input ids"),
        Setting("PAYOUT_SHARDS_DIR", _in_data_dir("shards"), "per-shard Parquet of ids, statuses, fetch stats", str, ABSOLUTE_PATH),
        Setting("PAYOUT_SENSOR_INTERVAL_SECONDS", 86400, "seconds between two ticks of the daily sensor", int),
        Setting("PAYOUT_RECHECK_HOURS", 24.0, "an unsettled id is re-checked once it is this old", float),
        Setting("POLYGON_RPC_URL", None, "Polygon JSON-RPC endpoint of the chain source (may hold a key); unset: off",
                str, RPC_URL),
        Setting("POLYGON_CTF_ADDRESS", POLYMARKET_CTF, "the Conditional Tokens contract", str,
                Rule(lambda v: isinstance(v, str) and re.fullmatch(r"0x[0-9a-fA-F]{40}", v) is not None, "a 0x-prefixed 20-byte address")),
        Setting("POLYGON_RPC_RATE_LIMIT", 50, "JSON-RPC requests that may start in any 10 s window", int, AT_LEAST_ONE),
        Setting("POLYGON_RPC_BATCH_SIZE", 50, "calls per JSON-RPC batch", int, AT_LEAST_ONE),
        Setting("POLYGON_LOG_BLOCK_RANGE", 2000, "blocks per eth_getLogs request", int, AT_LEAST_ONE),
        Setting("POLYGON_LOG_START_BLOCK", 4_023_686, "first block scanned for resolution events (the CTF's deployment)", int,
                Rule(_number(0), "a block number, 0 or more")),
    )
}


def value(variable: str, environ: Mapping[str, str] | None = None) -> Default:
    """A setting's value now (for the sensor's schedule and the scripts, outside any run)."""
    return SETTINGS[variable].value(environ)


def for_resource(variable: str) -> object:
    """A setting as a resource field: its EnvVar where set, else its default."""
    return SETTINGS[variable].for_resource()
