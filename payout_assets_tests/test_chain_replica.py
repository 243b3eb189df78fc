"""The local chain runs the published Conditional Tokens bytecode and answers like a Polygon node.

Every answer here is computed by the contract's own code: genesis only fills its storage,
and conditions resolved through `prepareCondition`/`reportPayouts` emit real events.
"""

import json
import random
import urllib.error
import urllib.request

import pytest
from eth_abi import decode, encode
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector, keccak

from chain_replica import CTF_ADDRESS, ChainServer, SeededCondition, load_artifact, write_seeds
from chain_replica.contract import ArtifactMissing
from subgraph_replica.process import module_process

RESOLUTION_TOPIC = "0x" + event_signature_to_log_topic(
    "ConditionResolution(bytes32,address,bytes32,uint256,uint256[])").hex()


def _ids(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(32) for _ in range(count)]


def call_data(signature: str, types: list[str], values: list) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, values)).hex()


def rpc(url: str, payload: object) -> tuple[int, object, dict]:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def eth_call(number: int, data: str) -> dict:
    return {"jsonrpc": "2.0", "id": number, "method": "eth_call", "params": [{"to": CTF_ADDRESS, "data": data}, "latest"]}


def read_condition(url: str, condition_id: bytes) -> tuple[int, int, list[int]]:
    """Slot count, denominator and numerators, asked of the contract in one batch."""
    calls = [
        eth_call(0, call_data("getOutcomeSlotCount(bytes32)", ["bytes32"], [condition_id])),
        eth_call(1, call_data("payoutDenominator(bytes32)", ["bytes32"], [condition_id])),
    ] + [eth_call(2 + i, call_data("payoutNumerators(bytes32,uint256)", ["bytes32", "uint256"], [condition_id, i])) for i in range(2)]
    status, answers, _ = rpc(url, calls)
    assert status == 200
    by_id = {answer["id"]: answer for answer in answers}
    slots, denominator = (decode(["uint256"], bytes.fromhex(by_id[i]["result"][2:]))[0] for i in (0, 1))
    numerators = [decode(["uint256"], bytes.fromhex(by_id[2 + i]["result"][2:]))[0] for i in range(slots)]
    return slots, denominator, numerators


@pytest.fixture(scope="module")
def seeded() -> list[SeededCondition]:
    ids = _ids(4, seed=1)
    return [
        SeededCondition(ids[0], 2, (1, 0)),
        SeededCondition(ids[1], 2, (0, 1)),
        SeededCondition(ids[2], 2, (1, 1)),
        SeededCondition(ids[3], 2),  # prepared, not resolved
    ]


@pytest.fixture(scope="module")
def chain(seeded: list[SeededCondition]):
    with ChainServer(seeded) as server:
        yield server


def test_genesis_seeded_real_ids_are_answered_by_the_contract(chain: ChainServer, seeded: list[SeededCondition]) -> None:
    assert read_condition(chain.url, seeded[0].condition_id) == (2, 1, [1, 0])
    assert read_condition(chain.url, seeded[1].condition_id) == (2, 1, [0, 1])
    assert read_condition(chain.url, seeded[2].condition_id) == (2, 2, [1, 1])
    assert read_condition(chain.url, seeded[3].condition_id) == (2, 0, [0, 0])
    assert read_condition(chain.url, b"\x42" * 32) == (0, 0, [])  # never prepared


def test_conditions_resolved_through_transactions_emit_their_event(chain: ChainServer) -> None:
    question = keccak(b"will it rain")
    _, latest, _ = rpc(chain.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]})
    at = int(latest["result"]["timestamp"], 16) + 2  # prepared a second before: both after what other tests mined
    condition_id = chain.resolve(question, [0, 1], timestamp=at)
    assert read_condition(chain.url, bytes.fromhex(condition_id)) == (2, 1, [0, 1])
    status, answer, _ = rpc(chain.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [
        {"fromBlock": "0x0", "toBlock": "latest", "address": CTF_ADDRESS, "topics": [RESOLUTION_TOPIC, "0x" + condition_id]}]})
    [log] = answer["result"]
    assert log["topics"][3] == "0x" + question.hex()
    slots, numerators = decode(["uint256", "uint256[]"], bytes.fromhex(log["data"][2:]))
    assert (slots, list(numerators)) == (2, [0, 1])
    _, block, _ = rpc(chain.url, {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber", "params": [log["blockNumber"], False]})
    assert int(block["result"]["timestamp"], 16) == at


def test_the_contract_refuses_a_second_report(chain: ChainServer) -> None:
    """Its own rule (`payout denominator already set`): proof that its code, not a stub, runs."""
    question = keccak(b"twice")
    chain.resolve(question, [1, 0])
    with pytest.raises(Exception, match="reverted"):
        chain._on_loop(lambda state: state.chain.report(question, [0, 1]))


def test_a_batch_is_answered_call_by_call_and_injected_errors_hit_only_their_calls(chain: ChainServer, seeded) -> None:
    target = seeded[0].condition_id
    chain.configure(failing_ids={target.hex(): 1})
    calls = [eth_call(i, call_data("payoutDenominator(bytes32)", ["bytes32"], [s.condition_id])) for i, s in enumerate(seeded)]
    calls.append({"jsonrpc": "2.0", "id": 99, "method": "eth_nope", "params": []})
    status, answers, _ = rpc(chain.url, calls)
    assert status == 200 and [a["id"] for a in answers] == [0, 1, 2, 3, 99]
    assert answers[0]["error"]["code"] == -32000
    assert [int(a["result"], 16) for a in answers[1:4]] == [1, 2, 0]
    assert answers[4]["error"]["code"] == -32601
    _, again, _ = rpc(chain.url, calls[:1])  # the injected failure was used up
    assert int(again[0]["result"], 16) == 1
    chain.configure(failing_ids={})


def test_limits_batch_size_log_range_and_rate(chain: ChainServer) -> None:
    chain.resolve(keccak(b"limits"), [1, 0])  # two blocks more, whichever tests ran before
    chain.configure(max_batch=2, max_log_blocks=1)
    try:
        status, answer, _ = rpc(chain.url, [eth_call(i, "0x") for i in range(3)])
        assert status == 400 and "between 1 and 2" in answer["error"]["message"]
        _, logs, _ = rpc(chain.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"fromBlock": "0x0", "toBlock": "latest"}]})
        assert logs["error"]["code"] == -32005
    finally:
        chain.configure(max_batch=None, max_log_blocks=None)
    chain.configure(rate_limit=2, window_seconds=30.0)
    try:
        statuses = [rpc(chain.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}) for _ in range(3)]
        assert [s for s, _, _ in statuses] == [200, 200, 429]
        assert int(statuses[2][2]["Retry-After"]) >= 1
    finally:
        chain.configure(rate_limit=None)


def test_only_the_published_artifact_is_run(tmp_path) -> None:
    with pytest.raises(ArtifactMissing, match="npm pack"):
        load_artifact(tmp_path / "absent.json")
    altered = tmp_path / "ConditionalTokens.json"
    altered.write_text(json.dumps({"abi": [], "bytecode": "0x00", "deployedBytecode": "0x00"}))
    with pytest.raises(ValueError, match="not the published"):
        load_artifact(altered)


@pytest.mark.slow
def test_the_chain_runs_as_a_process_of_its_own(tmp_path, seeded) -> None:
    """`python -m chain_replica`, as the demo starts it."""
    write_seeds(tmp_path / "seeds.csv", seeded)
    with module_process("chain_replica", "--seeds", str(tmp_path / "seeds.csv")) as url:
        assert read_condition(url, seeded[2].condition_id) == (2, 2, [1, 1])
