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

# The embedded ClickHouse (chDB) has a jemalloc of its own, read from this variable when its
# library loads (at the first client). By default it keeps freed pages for 5 s: at 2,000,000
# ids the load's inserts raised the run's peak from 692 to 811 MB, to 773 MB when pages unused
# for 0.2 s were returned. Returned at once, a 2,000,000-id run without limit peaks at 637-640
# MB instead of 692-702, for about 5 s more CPU over its 16 shards' loads and table reads, which
# run beside the fetch. A ClickHouse server is not affected. Appended, as for polars: the last value wins.
CHDB_RETURNS_FREED_PAGES = "background_thread:true,dirty_decay_ms:0,muzzy_decay_ms:0"
os.environ["JE_MALLOC_CONF"] = ",".join(filter(None, (os.environ.get("JE_MALLOC_CONF"), CHDB_RETURNS_FREED_PAGES)))

from payout_assets.definitions import defs  # noqa: E402  (after the allocator setting)

__all__ = ["defs"]
