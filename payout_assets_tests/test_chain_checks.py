"""`agreement_with_chain`: the loaded table against the contract on the local chain."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest

from chain_replica import ChainServer, SeededCondition, seeds_from_rows
from payout_assets.checks.chain_checks import agreement_with_chain, agrees
from payout_assets.fetch import goldsky_payouts
from payout_assets.resources.chain import ChainResource
from payout_assets.resources.conditional_tokens import RESOLVED, ChainCondition
from payout_assets_tests.support import BACKFILL, Truth, check_results, make_resources, make_truth, random_ids
from subgraph_replica import ConditionRow, ReplicaServer

CHECK_OP = "resolutions_external_ingest_agreement_with_chain"


@pytest.fixture(scope="module")
def truth() -> Truth:
    return make_truth(200, seed=21)


@pytest.fixture(scope="module")
def loaded(truth: Truth, tmp_path_factory) -> Iterator[dict]:
    """A backfill with the chain source off, as by default; the check says it skipped."""
    tmp_path = tmp_path_factory.mktemp("loaded")
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        result = dg.materialize([*BACKFILL, agreement_with_chain], resources=resources, raise_on_error=False,
                                tags={"dagster/asset_partition_range_start": "0", "dagster/asset_partition_range_end": "f"})
        assert result.success
        evaluation = check_results(result)["agreement_with_chain"]
        assert evaluation.passed
        assert evaluation.metadata["status"].value == "skipped by configuration"
        assert evaluation.description and "POLYGON_RPC_URL" in evaluation.description
        yield {**resources, "replica": replica, "tmp_path": tmp_path}


def run_check(resources: dict, chain: ChainServer, sample_size: int = 1000) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [goldsky_payouts, agreement_with_chain],
        resources={**{k: v for k, v in resources.items() if k in ("files", "clickhouse", "run_lock", "goldsky")},
                   "chain": ChainResource(rpc_url=chain.url, rate_limit=1000, backoff_seconds=0.01, max_attempts=2)},
        selection=dg.AssetSelection.checks(agreement_with_chain),
        run_config={"ops": {CHECK_OP: {"config": {"sample_size": sample_size}}}},
        raise_on_error=False,
    )
    return check_results(result)["agreement_with_chain"]


def counts(evaluation: dg.AssetCheckEvaluation) -> dict[str, int]:
    return {name: evaluation.metadata[name].value for name in ("checked", "agreed", "disagreed", "unknown", "failed")}


def resolved_ids(truth: Truth) -> list[str]:
    return sorted(truth.resolved())


def test_a_chain_that_agrees_passes(loaded: dict, truth: Truth) -> None:
    with ChainServer(seeds_from_rows(truth.rows.values())) as chain:
        evaluation = run_check(loaded, chain)
    n = len(truth.resolved())
    assert evaluation.passed
    assert counts(evaluation) == {"checked": n, "agreed": n, "disagreed": 0, "unknown": 0, "failed": 0}


def test_disagreements_are_an_error_that_names_them(loaded: dict, truth: Truth) -> None:
    ids = resolved_ids(truth)
    flipped, unresolved_on_chain, absent = ids[:3], ids[3], ids[4:6]
    seeds = []
    for seed in seeds_from_rows(truth.rows.values()):
        cid = seed.condition_id.hex()
        if cid in flipped:
            seed = replace(seed, numerators=tuple(reversed(seed.numerators)) if seed.numerators != (1, 1) else (1, 0))
        elif cid == unresolved_on_chain:
            seed = SeededCondition(seed.condition_id, 2)
        elif cid in absent:
            continue
        seeds.append(seed)
    with ChainServer(seeds) as chain:
        evaluation = run_check(loaded, chain)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    found = counts(evaluation)
    assert (found["disagreed"], found["unknown"], found["agreed"]) == (4, 2, len(ids) - 6)
    listed = " ".join(evaluation.metadata["first_disagreements"].value)
    assert all(cid in listed for cid in [*flipped, unresolved_on_chain])
    assert f"{unresolved_on_chain}: table" in listed and "chain unresolved" in listed
    assert sorted(evaluation.metadata["first_unknown_ids"].value) == sorted(absent)


def test_ids_the_contract_does_not_know_are_a_warning(loaded: dict, truth: Truth) -> None:
    ids = resolved_ids(truth)
    with ChainServer([s for s in seeds_from_rows(truth.rows.values()) if s.condition_id.hex() != ids[0]]) as chain:
        evaluation = run_check(loaded, chain)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert counts(evaluation)["unknown"] == 1 and counts(evaluation)["disagreed"] == 0


def test_calls_that_keep_failing_are_a_warning_not_an_agreement(loaded: dict, truth: Truth) -> None:
    ids = resolved_ids(truth)
    with ChainServer(seeds_from_rows(truth.rows.values()), failing_ids={ids[1]: -1}) as chain:
        evaluation = run_check(loaded, chain)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert counts(evaluation)["failed"] == 1 and counts(evaluation)["agreed"] == len(ids) - 1
    assert ids[1] in evaluation.metadata["first_failed"].value[0]


def test_the_sample_is_bounded_by_its_size(loaded: dict, truth: Truth) -> None:
    with ChainServer(seeds_from_rows(truth.rows.values())) as chain:
        evaluation = run_check(loaded, chain, sample_size=7)
        calls = chain.stats()["calls"]["eth_call"]
    assert counts(evaluation)["checked"] == 7 and evaluation.metadata["sample_size"].value == 7
    assert calls == 7 * 4  # two calls per id and one per slot of each binary payout


def test_rows_this_run_inserted_are_always_in_the_sample(truth: Truth, tmp_path: Path) -> None:
    """A second run adds three resolved ids; one disagrees with the chain. With a sample of
    three, only this run's rows are compared, so the disagreement cannot be missed."""
    new_ids = random_ids(3, seed=99)
    new_rows = [ConditionRow(f"0x{cid}", ("1", "0"), "1", "", 30_000_000) for cid in new_ids]
    seeds = seeds_from_rows([*truth.rows.values(), *new_rows])
    seeds = [replace(s, numerators=(0, 1)) if s.condition_id.hex() == new_ids[1] else s for s in seeds]
    with ReplicaServer(truth.rows.values()) as replica, ChainServer(seeds) as chain:
        resources = make_resources(tmp_path, replica.url, truth.ids)
        resources["chain"] = ChainResource(rpc_url=chain.url, rate_limit=1000)
        config = {"ops": {CHECK_OP: {"config": {"sample_size": 3}}}}
        first = backfill_with_check(resources, config)
        assert first["agreement_with_chain"].passed
        replica.upsert(new_rows)
        Path(resources["files"].input_ids_path).write_text("\n".join([*truth.ids, *new_ids]) + "\n")
        second = backfill_with_check(resources, config)["agreement_with_chain"]
    assert counts(second)["checked"] == 3 and second.metadata["from_this_run"].value == 3
    assert not second.passed and second.severity == dg.AssetCheckSeverity.ERROR
    assert second.metadata["first_disagreements"].value == [f"{new_ids[1]}: table [1, 0]/1, chain [0, 1]/1"]


def backfill_with_check(resources: dict, run_config: dict) -> dict[str, dg.AssetCheckEvaluation]:
    result = dg.materialize(
        [*BACKFILL, agreement_with_chain], resources=resources, run_config=run_config, raise_on_error=False,
        tags={"dagster/asset_partition_range_start": "0", "dagster/asset_partition_range_end": "f"},
    )
    return check_results(result)


@pytest.mark.parametrize("table, chain, same", [
    (((1, 0), 1), ((1, 0), 1), True),
    (((1, 1), 2), ((1, 1), 2), True),
    (((2, 0), 2), ((1, 0), 1), True),  # the same payout, exact as fractions
    (((1, 0), 1), ((0, 1), 1), False),
    (((1, 1), 2), ((1, 0), 1), False),
    (((1, 0), 1), ((1, 0, 0), 1), False),
    (((1, 2), 3), ((1, 1), 2), False),
])
def test_payouts_are_compared_as_exact_fractions(table, chain, same) -> None:
    row = ("ab" * 32, *table)
    assert agrees(row, ChainCondition("ab" * 32, RESOLVED, *chain)) is same
