"""Property tests (Hypothesis): whatever an answer holds, every asked id ends with exactly one
status, nothing raises, every reason stays within its bound and every value is read quickly."""

import asyncio
import json
import math
import time
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payout_assets.core.bounds import AnswerBounds
from payout_assets.core.payouts import UINT32_MAX, Payout, from_decimals, from_numerators
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets.core.statuses import RESOLVED, STATUSES, classify, to_frame
from payout_assets.core.subgraph import BatchAnswer, PayoutShape, SubgraphInfo, UnsupportedSubgraph
from payout_assets.resources.goldsky_client import PermanentFailure
from payout_assets_tests.support import random_ids
from payout_assets_tests.support.processes import ScriptedAnswer, ScriptedUpstream
from subgraph_replica import big_decimal_ratio
from subgraph_replica.faults import CORRUPT_ANSWERS, CORRUPT_VALUES

ASKED = random_ids(6, seed=91)
BOUNDS = AnswerBounds()
SHAPES = [PayoutShape("numerators", False), PayoutShape("numerators", True), PayoutShape("decimals", True)]
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
SECONDS_PER_ENTITY = 0.1  # ~5 µs an entity when idle, 30 ms seen with the suite on both cores; a day-long value takes minutes
SECONDS_PER_ANSWER = 3.0  # one attempt, a 1 s timeout, and the client's own set-up

numberish = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.integers(0, 6000).map(lambda zeros: "1" + "0" * zeros),
    st.tuples(st.integers(0, 4000), st.integers(-(10**12), 10**12)).map(lambda t: f"0.{'3' * t[0]}e{t[1]}"),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.text(alphabet="0123456789²³¹٣.eE+- ", max_size=40),
    st.sampled_from(CORRUPT_VALUES),
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | numberish,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=12,
)
field_value = json_value | st.lists(numberish, max_size=6)
asked_id = st.sampled_from([f"0x{cid}" for cid in ASKED])
# Mostly well-formed entities whose numbers may be huge: the values that reach the arithmetic.
digits = st.integers(0, 2**40).map(str) | st.integers(0, 6000).map(lambda zeros: "1" + "0" * zeros)
plausible = st.one_of(
    st.fixed_dictionaries({"id": asked_id, "payoutNumerators": st.lists(digits, max_size=4), "payoutDenominator": digits}),
    st.fixed_dictionaries({"id": asked_id, "payouts": st.lists(numberish, max_size=4), "resolutionTimestamp": numberish | st.none()}),
)
entity = plausible | st.fixed_dictionaries(
    {"id": asked_id | json_value},
    optional={name: field_value for name in ("payoutNumerators", "payoutDenominator", "payouts", "resolutionTimestamp")},
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entities=st.lists(entity, max_size=10), block=st.none() | st.integers(0, 2**63 - 1), shape=st.sampled_from(SHAPES))
def test_any_entity_values_give_one_status_per_asked_id(entities, block, shape):
    started = time.perf_counter()
    rows, _ = classify(BatchAnswer(ids=ASKED, entities=entities, block_number=block), shape, NOW)
    assert time.perf_counter() - started < SECONDS_PER_ENTITY * (1 + len(entities))
    assert sorted(row["condition_id"] for row in rows) == sorted(ASKED)
    assert all(row["status"] in STATUSES for row in rows)
    assert all(len(row.get("reason") or "") <= BOUNDS.max_reason_chars for row in rows)
    for row in rows:
        if row["status"] == RESOLVED:
            assert sum(row["payout_numerators"]) == row["payout_denominator"] <= UINT32_MAX
    assert to_frame(rows).height == len(ASKED)  # and every row fits the Parquet schema


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entities=st.lists(entity, max_size=10), shape=st.sampled_from(SHAPES))
def test_a_payout_read_once_for_a_batch_gives_each_id_the_row_it_gets_alone(entities, shape):
    """Entities that share payout fields share one reading: each id's row is still the one its
    entity gets in a batch of its own, its resolution time and its reason included."""
    rows, _ = classify(BatchAnswer(ids=ASKED, entities=entities, block_number=3), shape, NOW)
    for row in rows:
        alone = [item for item in entities if str(item.get("id")) == f"0x{row['condition_id']}"]
        [row_alone], _ = classify(BatchAnswer(ids=[row["condition_id"]], entities=alone, block_number=3), shape, NOW)
        assert row == row_alone


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10**4), min_size=1, max_size=8).filter(any))
def test_shares_as_graph_node_rounds_them_give_back_the_exact_vector(numerators):
    """graph-node rounds at the 34th significant digit and drops trailing zeros (33 digits
    or fewer arrive for 8/21): the vector comes back whatever the digit count."""
    total = sum(numerators)
    common = math.gcd(total, *numerators)
    shares = [big_decimal_ratio(str(n), str(total)) for n in numerators]
    assert from_decimals(shares) == Payout(tuple(n // common for n in numerators), total // common)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**16), min_size=1, max_size=8).filter(any), st.integers(1, 2**200))
def test_integer_vectors_are_reduced_before_the_uint32_test(numerators, factor):
    total = sum(numerators)
    common = math.gcd(total, *numerators)
    scaled = [str(n * factor) for n in numerators]
    expected = Payout(tuple(n // common for n in numerators), total // common)
    assert from_numerators(scaled, str(total * factor)) == expected


def _json_bytes(value: object) -> bytes:
    return json.dumps(value).encode()


graphql_shaped = st.fixed_dictionaries(
    {"data": st.fixed_dictionaries(
        {"conditions": st.lists(entity, max_size=6) | json_value, "_meta": json_value | st.just({"block": {"number": 5}})}
    ) | json_value},
    optional={"errors": json_value},
).map(_json_bytes)
bodies = st.one_of(
    graphql_shaped,
    json_value.map(_json_bytes),
    st.sampled_from(CORRUPT_ANSWERS).map(_json_bytes),
    st.just(_json_bytes({"errors": [{"message": "echo: Authorization: Bearer gsk-property-key"}], "data": None})),
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
)
answers = st.builds(
    ScriptedAnswer,
    status=st.sampled_from([200] * 6 + [201, 204, 400, 401, 403, 404, 408, 413, 425, 429, 500, 502, 503, 504, 599]),
    headers=st.fixed_dictionaries(
        {"Content-Type": st.sampled_from(["application/json", "text/html", "text/plain", "application/octet-stream"])},
        optional={"Retry-After": st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)},
    ),
    body=bodies,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=answers, shape=st.sampled_from(SHAPES))
def test_any_response_gives_one_status_per_asked_id(scripted_upstream: ScriptedUpstream, answer, shape):
    scripted_upstream.answer = answer
    goldsky = GoldskyResource(
        url=scripted_upstream.url, api_key="gsk-property-key", max_attempts=2, timeout_seconds=1.0,
        backoff_seconds=0.0, max_backoff_seconds=0.0, max_retry_after_seconds=0.0, rate_limit=100_000,
    )

    async def fetch() -> BatchAnswer:
        async with goldsky.client() as client:
            return await client.fetch_batch(shape.query(), ASKED)

    started = time.perf_counter()
    fetched = asyncio.run(fetch())
    rows, _ = classify(fetched, shape, NOW)
    assert time.perf_counter() - started < SECONDS_PER_ANSWER
    assert sorted(row["condition_id"] for row in rows) == sorted(ASKED)
    assert all(len(row.get("reason") or "") <= BOUNDS.max_reason_chars for row in rows)
    assert all("gsk-property-key" not in (row.get("reason") or "") for row in rows)
    assert to_frame(rows).height == len(ASKED)


discovery_shaped = st.fixed_dictionaries(
    {"data": st.fixed_dictionaries(
        {"__type": json_value | st.just({"fields": [{"name": "id"}, {"name": "payouts"}]}),
         "filter": json_value, "_meta": json_value | st.just({"block": {"number": 5, "timestamp": 7}})}
    ) | json_value},
).map(_json_bytes)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=discovery_shaped | bodies, status=st.sampled_from([200] * 4 + [429, 500, 404]))
def test_any_discovery_answer_is_read_or_refused_by_name(scripted_upstream: ScriptedUpstream, body, status):
    """The pre-flight check reports a refusal; nothing else may come out of discovery."""
    scripted_upstream.answer = ScriptedAnswer(status, {"Content-Type": "application/json"}, body)
    goldsky = GoldskyResource(url=scripted_upstream.url, max_attempts=2, timeout_seconds=1.0, backoff_seconds=0.0,
                              max_backoff_seconds=0.0, max_retry_after_seconds=0.0, rate_limit=100_000)

    async def discover() -> SubgraphInfo:
        async with goldsky.client() as client:
            return await client.discover()

    try:
        info = asyncio.run(discover())
    except (PermanentFailure, UnsupportedSubgraph) as refused:
        assert len(str(refused)) <= BOUNDS.max_reason_chars + 40
    else:
        assert info.shape.kind in ("numerators", "decimals") and info.block_number >= 0
