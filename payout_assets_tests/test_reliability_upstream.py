"""Issue 5, items 1-2: upstream faults and corrupt upstream data lose nothing and load nothing wrong."""

import polars as pl

from payout_assets.fetch_plan import packed_batches, request_count
from payout_assets.load import TABLE
from payout_assets.partitions import SHARDS
from payout_assets_tests.support import backfill, check_results, failed_checks, make_resources, make_truth, query, random_ids, statuses, table_contents
from subgraph_replica import FAULT_KINDS, ConditionRow, FaultMix, ReplicaServer
from subgraph_replica.schema import unrequested_rows

# Every kind, but "slow" (which costs a client timeout) at 1/25 of the faults instead of 1/9:
# FaultMix picks a kind uniformly from this tuple, so repeating the others weights them.
FAST_KINDS = tuple(kind for kind in FAULT_KINDS if kind != "slow")
WEIGHTED_KINDS = FAST_KINDS * 3 + ("slow",)
# With seed 11 the first 60 draws of the replica's generator hold all nine kinds (16 faults,
# one "slow"); a run sends more than 80 requests, so every kind is served whatever the
# arrival order of the concurrent requests (the k-th request gets the k-th draw).
FAULT_SEED = 11


def payouts(resources: dict) -> dict[str, tuple[list[int], int]]:
    return {cid: (nums, den) for cid, (nums, den, *_rest) in table_contents(resources).items()}


def raw_row_count(resources: dict) -> int:
    return query(resources, f"SELECT count() FROM {TABLE}")[0][0]


def fetch_metadata(result) -> dict:
    return {key: value.value for key, value in result.asset_materializations_for_node("goldsky_payouts")[0].metadata.items()}


def test_twenty_percent_fault_mix_loses_nothing(tmp_path, monkeypatch):
    truth = make_truth(2000, seed=21)
    # 25-id batches (instead of 1,000) give ~80 requests from 2,000 ids, so the mix bites often.
    monkeypatch.setattr("payout_assets.fetch_plan.MAX_IDS_PER_REQUEST", 25)
    mix = FaultMix(rate=0.2, seed=FAULT_SEED, kinds=WEIGHTED_KINDS, slow_seconds=2.0)
    with ReplicaServer(truth.rows.values(), faults=mix) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids, timeout_seconds=1.0, max_attempts=8)
        result = backfill(resources)
        faulted = replica.stats()["faulted"]

    assert set(faulted) == set(FAULT_KINDS), faulted  # every kind was really served
    assert result.success
    assert statuses(resources) == {cid: truth.status(cid) for cid in truth.ids}
    assert payouts(resources) == truth.resolved()
    assert raw_row_count(resources) == len(truth.resolved())  # no duplicate even before merges
    metadata = fetch_metadata(result)
    assert metadata["failed"] == 0 and metadata["ids"] == len(truth.ids)
    # The first six draws are clean, so both discoveries (pre-flight, fetch) pass at once and
    # every fault hit a batch: each cost exactly one retry, and each 429 was counted.
    assert metadata["retries"] == sum(faulted.values())
    assert metadata["rate_limited"] == faulted["429"] + faulted["429_no_retry_after"]


def test_a_dead_shard_is_reported_failed_and_completed_later(tmp_path, monkeypatch):
    truth = make_truth(3000, seed=22)
    monkeypatch.setattr("payout_assets.fetch_plan.MAX_IDS_PER_REQUEST", 25)  # about 7 requests of shard 3's ids alone
    mix = FaultMix(rate=1.0, seed=3, kinds=FAST_KINDS, id_prefixes=("0x3",))  # requests of shard 3's ids alone
    with ReplicaServer(truth.rows.values(), faults=mix) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids, max_attempts=3)
        result = backfill(resources)
        # Batches run across shards, each shard's ids in ascending order: shard 3's first and last
        # ids share requests with shards 2 and 4.
        split = packed_batches((shard, sorted(resources["files"].read("ids", shard)["condition_id"])) for shard in SHARDS)
        shard3 = {cid for batch in split if {part.shard for part in batch} == {"3"} for part in batch for cid in part.ids}
        others = set(truth.ids) - shard3

        # The run itself succeeds, but the operator sees the loss in the metadata and a failed check.
        assert result.success
        metadata = fetch_metadata(result)
        assert metadata["failed"] == len(shard3) > 0
        shard3_row = next(line for line in metadata["per_shard"].splitlines() if line.startswith("| 3 |"))
        assert f"| {len(shard3)} |" in shard3_row
        assert failed_checks(result).get("fetch_health") == "ERROR"
        assert check_results(result)["fetch_health"].metadata["failed"].value == len(shard3)

        shard3_statuses = resources["files"].read("statuses", "3").filter(pl.col("status") == "failed")
        assert set(shard3_statuses["condition_id"]) == shard3
        assert shard3_statuses["reason"].str.contains("after 3 attempts").all()
        assert {cid: s for cid, s in statuses(resources).items() if cid in others} == {cid: truth.status(cid) for cid in others}
        assert payouts(resources) == {cid: p for cid, p in truth.resolved().items() if cid in others}

        # Faults off: a plain re-run completes the shard, and asks for no id it already resolved.
        replica.configure(faults=None)
        replica.reset_stats()
        again = backfill(resources)
        asked = {entity_id[2:] for entity_id in replica.requested_ids()}
    assert again.success and failed_checks(again) == {}
    assert statuses(resources) == {cid: truth.status(cid) for cid in truth.ids}
    assert payouts(resources) == truth.resolved()
    assert raw_row_count(resources) == len(truth.resolved())
    assert shard3 <= asked and not asked & (set(truth.resolved()) - shard3)


def corrupt_rows(ids: list[str]) -> tuple[list[ConditionRow], dict[str, str]]:
    """Corrupt entities, and for each id a text its `malformed` reason must contain."""
    cases = [
        (("abc", "1"), "1", "abc"),  # non-numeric numerator
        (("1", "0"), "one", "one"),  # non-numeric denominator
        (("-1", "2"), "1", "-1"),  # negative numerator (the sum is right)
        (("1", "4294967296"), "4294967297", "4294967297"),  # 2^32 + 1, irreducible: no UInt32
        (("18446744073709551616", "1"), "18446744073709551617", "18446744073709551617"),  # 2^64 + 1
        (("1", "1"), "1", "sum"),  # numerators do not sum to the denominator
        (("1", "0"), "2", "sum"),
    ]
    rows, reasons = [], {}
    for cid, (numerators, denominator, reason) in zip(ids, cases, strict=False):
        rows.append(ConditionRow(f"0x{cid}", numerators, denominator, "1700000000", 30_000_000))
        reasons[cid] = reason
    duplicated = ids[len(cases)]  # the same id twice: two valid but different entities
    rows += [
        ConditionRow(f"0x{duplicated}", ("1", "0"), "1", "1700000000", 30_000_000),
        ConditionRow(f"0x{duplicated}", ("0", "1"), "1", "1700000000", 30_000_001),
    ]
    reasons[duplicated] = "2"
    return rows, reasons


def test_corrupt_entities_end_malformed_and_never_reach_the_table(tmp_path):
    truth = make_truth(400, seed=23)
    corrupt_ids = random_ids(8, seed=24)
    rows, reasons = corrupt_rows(corrupt_ids)
    extras_per_answer = 2
    with ReplicaServer([*truth.rows.values(), *rows], inject_unrequested=extras_per_answer) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids + corrupt_ids)
        result = backfill(resources)
    assert result.success

    frame = pl.concat([resources["files"].read("statuses", shard) for shard in SHARDS])
    malformed = frame.filter(pl.col("status") == "malformed")
    assert dict(zip(malformed["condition_id"], malformed["reason"])).keys() == reasons.keys()
    for cid, reason in zip(malformed["condition_id"], malformed["reason"]):
        assert reason and reasons[cid] in reason, (cid, reason)
    assert statuses(resources) == {cid: truth.status(cid) for cid in truth.ids} | {cid: "malformed" for cid in corrupt_ids}

    # Nothing of them, and nothing unrequested, reaches the table.
    unrequested = {row.id[2:] for row in unrequested_rows(extras_per_answer)}
    assert payouts(resources) == truth.resolved()
    assert not set(frame["condition_id"]) & unrequested
    assert raw_row_count(resources) == len(truth.resolved())

    requests = request_count(sum(resources["files"].read("ids", shard).height for shard in SHARDS))
    metadata = fetch_metadata(result)
    assert metadata["unrequested_entities"] == extras_per_answer * requests
    assert metadata["malformed"] == len(corrupt_ids)
    # The checks flag them: fetch_health warns, and names the ids with their reasons.
    assert failed_checks(result) == {"fetch_health": "WARN"}
    health = check_results(result)["fetch_health"].metadata
    assert health["malformed"].value == len(corrupt_ids)
    assert health["unrequested_entities"].value == extras_per_answer * requests
    assert {entry.split(":")[0] for entry in health["first_malformed"].value} == set(corrupt_ids)
