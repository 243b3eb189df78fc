"""The whole backfill into a temporary chDB directory, compared row by row with the truth."""

from datetime import datetime


from payout_assets.load import TABLE
from payout_assets.resources.payout_files import PayoutFiles
from payout_assets.view import VIEW
from payout_assets_tests.support import Truth, backfill, materialized, build_view, check_results, failed_checks, make_resources, query, statuses, table_contents
from subgraph_replica import ReplicaServer
from scripts.demo_data import seed_existing_table


def test_backfill_matches_the_truth_and_is_idempotent(resources: dict, truth: Truth):
    result = backfill(resources)
    assert result.success
    assert len(check_results(result)) == 13 and failed_checks(result) == {}
    assert statuses(resources) == {cid: truth.status(cid) for cid in truth.ids}

    table = table_contents(resources)
    expected = truth.resolved()
    assert {cid: (nums, den) for cid, (nums, den, *_rest) in table.items()} == expected
    for nums, _den, winning_index, _resolved_at, source in table.values():
        assert winning_index == nums.index(max(nums))
        assert source == "fetch_time"  # the pnl-subgraph has no resolution time

    metadata = result.asset_materializations_for_node("goldsky_payouts")[0].metadata
    assert metadata["ids"].value == len(truth.ids)
    assert metadata["resolved"].value == len(expected)
    assert metadata["rate_limited"].value == 0

    again = backfill(resources)
    assert again.success
    assert table_contents(resources) == table
    assert materialized(again, "resolutions_external_ingest").metadata["rows_inserted"].value == 0
    assert query(resources, f"SELECT count() FROM {TABLE}")[0][0] == len(expected)  # no pre-merge duplicates


def test_view_prefers_the_existing_table_and_keeps_one_row_per_condition(resources: dict, truth: Truth):
    assert backfill(resources).success
    payouts = truth.resolved()
    both = sorted(payouts)[:5]
    disagreeing = both[0]  # the users' table says otherwise: it wins, and the check warns
    existing_only, existing_invalid = "f" * 64, sorted(payouts)[5]  # invalid there: Goldsky's payout wins
    other = ([7, 0], 7) if payouts[disagreeing][0] == [0, 1] else ([0, 7], 7)  # scaled, so equality must be by fraction
    scaled = both[1]  # the same payout over another denominator agrees
    existing_vectors = {cid: payouts[cid] for cid in both} | {disagreeing: other}
    existing_vectors[scaled] = ([3 * n for n in payouts[scaled][0]], 3 * payouts[scaled][1])
    with resources["clickhouse"].get_client() as client:
        rows = [
            [cid, "", nums.index(max(nums)), nums, den, 2, datetime(2024, 1, 1), datetime(2024, 1, 2), "polymarket-api", 1]
            for cid, (nums, den) in existing_vectors.items()
        ]
        rows.append([existing_only, "YES", 0, [1, 0], 1, 2, None, datetime(2024, 1, 2), "polymarket-api", 1])
        rows.append([existing_invalid, "", 0, [0, 0], 0, 2, None, datetime(2024, 1, 2), "polymarket-api", 1])
        seed_existing_table(client, rows)
    view_result = build_view(resources)
    assert view_result.success
    assert failed_checks(view_result) == {"agreement_with_existing": "WARN"}
    agreement = check_results(view_result)["agreement_with_existing"].metadata
    assert agreement["disagreements"].value == 1
    assert agreement["compared"].value == len(both)  # the invalid row there is not compared
    assert agreement["first_disagreements"].value[0].startswith(disagreeing)

    view = {row[0]: row[1:] for row in query(resources, f"SELECT * FROM {VIEW}")}
    assert len(view) == len(query(resources, f"SELECT condition_id FROM {VIEW}"))  # one row per condition
    assert set(view) == set(payouts) | {existing_only}
    for cid in both:
        assert view[cid][0] == existing_vectors[cid][0] and view[cid][-1] == "polymarket-api"
    assert view[existing_only][-1] == "polymarket-api"
    assert view[existing_invalid][0] == payouts[existing_invalid][0] and view[existing_invalid][-1] == "goldsky-api"
    columns = [row[0] for row in query(resources, f"DESCRIBE TABLE {VIEW}")]
    assert columns == ["condition_id", "payout_numerators", "payout_denominator", "winning_index", "resolved_at", "resolution_source"]


def test_view_without_the_existing_table_covers_goldsky_rows(resources: dict, truth: Truth):
    assert backfill(resources).success
    assert build_view(resources).success
    assert query(resources, f"SELECT count(), countIf(resolution_source = 'goldsky-api') FROM {VIEW}")[0] == (
        len(truth.resolved()),
        len(truth.resolved()),
    )


def test_main_subgraph_decimals_and_resolution_times(tmp_path, truth: Truth):
    with ReplicaServer(truth.rows.values(), schema="main") as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        assert backfill(resources).success
    table = table_contents(resources)
    assert {cid: (nums, den) for cid, (nums, den, *_rest) in table.items()} == truth.resolved()
    for cid, (*_payout, resolved_at, source) in table.items():
        assert source == "subgraph"
        assert resolved_at == datetime.utcfromtimestamp(int(truth.rows[cid].resolution_timestamp))


def test_ids_from_a_clickhouse_query_join_the_input_file(tmp_path, truth: Truth, replica: ReplicaServer):
    """PAYOUT_INPUT_SQL: e.g. condition ids seen in trades with no row in the truth view."""
    from_file, from_trades = truth.ids[:2000], truth.ids[1500:]
    resources = make_resources(tmp_path, replica.url, from_file)
    files = resources["files"]
    resources["files"] = PayoutFiles(
        input_ids_path=files.input_ids_path, shards_dir=files.shards_dir, input_sql="SELECT market FROM default.trades ORDER BY market"
    )
    with resources["clickhouse"].get_client() as client:
        client.command("CREATE TABLE default.trades (market String) ENGINE = MergeTree ORDER BY market")
        client.insert("default.trades", [[f"0x{cid.upper()}"] for cid in from_trades] + [["not-a-condition"]], column_names=["market"])
    result = backfill(resources)
    assert result.success
    assert statuses(resources) == {cid: truth.status(cid) for cid in truth.ids}
    inputs = result.asset_materializations_for_node("missing_condition_ids")[0].metadata
    assert inputs["valid_ids"].value == len(truth.ids)
    assert inputs["duplicates"].value == 500 and inputs["invalid_lines"].value == 1
