"""A shorter input forgets nothing that was settled (issue 11)."""

from pathlib import Path

from payout_assets.load import TABLE
from payout_assets.partitions import SHARDS
from payout_assets_tests.support import Truth, backfill, check_results, make_resources, make_truth, query
from subgraph_replica import ReplicaServer


def test_ids_that_leave_the_input_keep_their_status_and_are_not_fetched_again(tmp_path: Path):
    truth: Truth = make_truth(20, seed=5)
    resolved = set(truth.resolved())
    kept = truth.ids[:5]
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        assert backfill(resources).success
        Path(resources["files"].input_ids_path).write_text("\n".join(kept) + "\n")
        shorter = backfill(resources)
        on_disk = {cid for shard in SHARDS for cid in resources["files"].read("statuses", shard)["condition_id"]}
        Path(resources["files"].input_ids_path).write_text("\n".join(truth.ids) + "\n")
        replica.reset_stats()
        again = backfill(resources)
        asked = {entity_id[2:] for entity_id in replica.requested_ids()}
    assert on_disk == set(truth.ids)  # the 15 that left the input are still known
    # ...but the shorter run counts and loads only its own five
    assert shorter.asset_materializations_for_node("goldsky_payouts")[0].metadata["ids"].value == len(kept)
    assert check_results(shorter)["coverage_vs_input"].metadata["valid_input_ids"].value == len(kept)
    assert check_results(shorter)["total_payouts"].passed
    assert not asked & resolved  # back in the input: no resolved id is fetched again
    assert again.asset_materializations_for_node("resolutions_external_ingest")[0].metadata["rows_inserted"].value == 0
    assert query(resources, f"SELECT count() FROM {TABLE}") == [(len(resolved),)]
