"""Every environment variable the project reads: its name, default and meaning, in one place.

The definitions hand them to resources as `EnvVar`s where set (so the UI shows the variable's
name, never its value); the sensor's schedule and the scripts read their values here.
Nothing else in the project reads `os.environ`.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

PROJECT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_DIR / "data"
PUBLIC_PNL_SUBGRAPH = (
    "https://api.goldsky.com/api/public/project_cl6mb8i9h0003e201j6li0diw/subgraphs/pnl-subgraph/0.0.14/gn"
)


class SettingError(ValueError):
    """A variable holds a value its setting cannot take; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    variable: str
    default: str | int | float | None
    meaning: str
    kind: type = str

    def value(self, environ: Mapping[str, str] | None = None) -> str | int | float | None:
        """The variable's value as `kind`, or the default where it is unset."""
        environ = os.environ if environ is None else environ
        if self.variable not in environ:
            return self.default
        raw = environ[self.variable]
        try:
            return self.kind(raw)
        except ValueError:
            raise SettingError(f"{self.variable}={raw!r} is not {_KIND_NAMES[self.kind]}") from None

    def for_resource(self) -> object:
        """An EnvVar where the variable is set (resolved by Dagster at run time), else the default.

        Dagster has no float EnvVar; float settings are never secret, so their value is used.
        """
        if self.variable not in os.environ:
            return self.default
        if self.kind is float:
            return self.value()
        return dg.EnvVar.int(self.variable) if self.kind is int else dg.EnvVar(self.variable)


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number"}

SETTINGS: dict[str, Setting] = {
    s.variable: s
    for s in (
        Setting("GOLDSKY_URL", PUBLIC_PNL_SUBGRAPH, "subgraph GraphQL endpoint"),
        Setting("GOLDSKY_API_KEY", None, "bearer token for a private endpoint; never logged"),
        Setting("GOLDSKY_RATE_LIMIT", 50, "requests that may start in any 10 s window", int),
        Setting("GOLDSKY_TIMEOUT_SECONDS", 30.0, "per-request timeout", float),
        Setting("GOLDSKY_MAX_ATTEMPTS", 6, "attempts per request before its ids end `failed`", int),
        Setting("GOLDSKY_BACKOFF_SECONDS", 1.0, "first retry delay; doubles per attempt", float),
        Setting("CLICKHOUSE_URL", f"chdb://{DATA_DIR / 'chdb'}", "`chdb:///abs/dir` or `http(s)://user:pass@host:port/db`"),
        Setting("PAYOUT_INPUT_IDS", str(DATA_DIR / "condition_ids_missing_api.txt"), "the input id file"),
        Setting("PAYOUT_INPUT_SQL", None, "optional ClickHouse query whose first column adds input ids"),
        Setting("PAYOUT_SHARDS_DIR", str(DATA_DIR / "shards"), "per-shard Parquet of ids, statuses, fetch stats"),
        Setting("PAYOUT_SENSOR_INTERVAL_SECONDS", 86400, "seconds between two ticks of the daily sensor", int),
        Setting("PAYOUT_RECHECK_HOURS", 24.0, "an unsettled id is re-checked once it is this old", float),
    )
}


def value(variable: str, environ: Mapping[str, str] | None = None) -> str | int | float | None:
    """A setting's value now (for the sensor's schedule and the scripts, outside any run)."""
    return SETTINGS[variable].value(environ)


def for_resource(variable: str) -> object:
    """A setting as a resource field: its EnvVar where set, else its default."""
    return SETTINGS[variable].for_resource()
