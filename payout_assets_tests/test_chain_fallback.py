"""Ids the subgraph cannot settle are asked of the contract, and loaded as their own source."""

import time
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
from eth_utils import keccak

from chain_replica import ChainServer, SeededCondition, seeds_from_rows
from payout_assets.checks.chain_checks import agreement_with_chain
from payout_assets.partitions import SHARDS
from payout_assets.resources.chain import ChainResource
from payout_assets_tests.support import BACKFILL, Truth, backfill, build_view, check_results, make_resources, make_truth, query
from subgraph_replica import ReplicaServer


def statuses(resources: dict) -> dict[str, dict]:
    frame = pl.concat([resources["files"].read("statuses", shard) for shard in SHARDS])
    return {row["condition_id"]: row for row in frame.iter_rows(named=True)}


def chain_resource(chain: ChainServer) -> ChainResource:
    return ChainResource(rpc_url=chain.url, rate_limit=1000, backoff_seconds=0.01, max_attempts=2, log_start_block=0)


def ids_with(truth: Truth, status: str) -> list[str]:
    return sorted(cid for cid in truth.ids if truth.status(cid) == status)


def test_not_found_ids_resolved_on_chain_are_loaded_as_polygon_ctf(tmp_path: Path) -> None:
    truth = make_truth(300, seed=41)
    absent = ids_with(truth, "not_found")
    assert len(absent) >= 3
    on_chain, unknown = absent[:2], absent[2:]
    seeds = [*seeds_from_rows(truth.rows.values()),
             SeededCondition(bytes.fromhex(on_chain[0]), 2, (0, 1)), SeededCondition(bytes.fromhex(on_chain[1]), 2, (1, 1))]
    with ChainServer(seeds) as chain:
        # One more id the subgraph lacks, resolved on chain through the contract, with its event.
        with_event = chain.resolve(keccak(b"only on chain"), [1, 0], timestamp=1_750_000_000)
        with ReplicaServer(truth.rows.values()) as replica:
            resources = make_resources(tmp_path, replica.url, [*truth.ids, with_event])
            resources["chain"] = chain_resource(chain)
            result = backfill(resources, assets=[*BACKFILL, agreement_with_chain])
            assert result.success
            replica.reset_stats()
            assert backfill(resources).success  # the next run: chain-settled ids are never asked again
            asked_again = set(replica.requested_ids())

    by_id = statuses(resources)
    settled = [*on_chain, with_event]
    assert [by_id[cid]["status"] for cid in settled] == ["resolved"] * 3
    assert by_id[on_chain[0]]["payout_numerators"] == [0, 1] and by_id[on_chain[1]]["payout_denominator"] == 2
    assert {by_id[cid]["endpoint"] for cid in settled} == {"polygon-ctf"}
    assert by_id[with_event]["resolved_at"] == datetime.fromtimestamp(1_750_000_000, timezone.utc)
    assert by_id[with_event]["resolved_at_source"] == "chain"
    assert all(by_id[cid]["status"] == "not_found" for cid in unknown)
    assert not asked_again & {f"0x{cid}" for cid in settled}

    metadata = result.asset_materializations_for_node("goldsky_payouts")[0].metadata
    resolved_by_subgraph = len(truth.resolved())
    assert metadata["settled_by_source"].value == {"goldsky-api": resolved_by_subgraph, "polygon-ctf": 3}
    assert metadata["chain_asked"].value == len(absent) + 1
    assert metadata["chain_unknown"].value == len(unknown)
    # The fetch's own checks count the statuses the chain left, and the per-shard table agrees.
    coverage = check_results(result)["coverage_vs_input"].metadata
    assert (coverage["resolved"].value, coverage["not_found"].value) == (resolved_by_subgraph + 3, len(unknown))
    assert metadata["resolved"].value == resolved_by_subgraph + 3
    table = dict(query(resources, "SELECT condition_id, source FROM default.resolutions_external_ingest FINAL"))
    assert {table[cid] for cid in settled} == {"polygon-ctf"}
    assert sum(source == "goldsky-api" for source in table.values()) == resolved_by_subgraph
    # The check compares only what the subgraph settled with the chain.
    chain_check = check_results(result)["agreement_with_chain"]
    assert chain_check.passed and chain_check.metadata["checked"].value == resolved_by_subgraph

    view = build_view(resources)
    assert view.success
    view_sources = dict(query(resources, "SELECT condition_id, resolution_source FROM cascadian_clean.vw_resolutions_truth"))
    assert {view_sources[cid] for cid in settled} == {"polygon-ctf"}


def test_unresolved_ids_are_asked_only_while_the_subgraph_lags(tmp_path: Path) -> None:
    truth = make_truth(200, seed=42)
    open_ids = ids_with(truth, "unresolved")
    closed_on_chain = open_ids[0]
    seeds = [SeededCondition(s.condition_id, 2, (1, 0)) if s.condition_id.hex() == closed_on_chain else s
             for s in seeds_from_rows(truth.rows.values())]
    results = {}
    for label, meta_timestamp in (("current", None), ("lagging", int(time.time()) - 12 * 3600)):
        with ChainServer(seeds) as chain, ReplicaServer(truth.rows.values(), meta_timestamp=meta_timestamp) as replica:
            (tmp_path / label).mkdir()
            resources = make_resources(tmp_path / label, replica.url, truth.ids)
            resources["chain"] = chain_resource(chain)
            result = backfill(resources)
            metadata = result.asset_materializations_for_node("goldsky_payouts")[0].metadata
            results[label] = (statuses(resources)[closed_on_chain]["status"], metadata["chain_asked"].value)
    not_found = len(ids_with(truth, "not_found"))
    assert results["current"] == ("unresolved", not_found)
    assert results["lagging"] == ("resolved", not_found + len(open_ids))


def test_with_the_chain_source_off_nothing_asks_the_chain(tmp_path: Path) -> None:
    truth = make_truth(150, seed=43)
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)  # chain off, as by default
        result = backfill(resources, assets=[*BACKFILL, agreement_with_chain])
    assert result.success
    metadata = result.asset_materializations_for_node("goldsky_payouts")[0].metadata
    assert metadata["settled_by_source"].value == {"goldsky-api": len(truth.resolved())}
    assert "chain_asked" not in metadata and "resolved_at_from_chain" not in metadata
    assert {row["status"] for cid, row in statuses(resources).items() if truth.status(cid) == "not_found"} == {"not_found"}
    assert check_results(result)["agreement_with_chain"].metadata["status"].value == "skipped by configuration"
    [(sources,)] = query(resources, "SELECT groupUniqArray(source) FROM default.resolutions_external_ingest FINAL")
    assert sources == ["goldsky-api"]
