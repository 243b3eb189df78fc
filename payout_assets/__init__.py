"""Polymarket payout backfill from a Goldsky subgraph into ClickHouse, as Dagster assets."""

from payout_assets.definitions import defs

__all__ = ["defs"]
