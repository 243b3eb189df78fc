"""Polymarket payout backfill from a Goldsky subgraph into ClickHouse, as Dagster assets."""

import os

# Polars' allocator (jemalloc) keeps freed pages for 0.5-1.5 s by default; polars reads this
# variable when it loads (so before any import below) as its documented override. The steps read
# shard after shard faster than that, each keeping the last one's pages: returning them at once
# lowers a 2,000,000-id run's load from 667 to 548 MB of RSS, for about 0.5 s more CPU. Appended,
# as the last value of an option wins: a parent process that loaded polars (a script, a test)
# passes polars' own defaults down in this variable.
RETURN_FREED_PAGES = "dirty_decay_ms:0,muzzy_decay_ms:0"
os.environ["_RJEM_MALLOC_CONF"] = ",".join(filter(None, (os.environ.get("_RJEM_MALLOC_CONF"), RETURN_FREED_PAGES)))

from payout_assets.definitions import defs  # noqa: E402  (after the allocator setting)

__all__ = ["defs"]
