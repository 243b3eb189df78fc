"""Issue 5, items 5-6: hostile and huge input files, and secrets that never leak."""

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value
from graphql import print_ast

from payout_assets.fetch import goldsky_payouts
from payout_assets.input_ids import missing_condition_ids
from payout_assets.partitions import SHARDS
from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.goldsky import GoldskyResource
from payout_assets_tests.support import FULL_RANGE, backfill, make_resources, make_truth, statuses
from payout_assets_tests.support.processes import free_port
from subgraph_replica import ReplicaServer

PROJECT = Path(__file__).resolve().parent.parent


def hostile_lines(smuggled: list[str]) -> list[str]:
    """Lines that carry real, resolvable ids inside quotes, braces or GraphQL text."""
    a, b, c, d, e, f, g, h = smuggled
    return [
        f'"0x{a}"',
        f"'{b}'",
        f'0x{c}", "0x{a}',
        f'{d}"]}}) {{ id }} all: conditions(first: 1000) {{ id payoutNumerators }} #',
        "{ conditions(first: 1000) { id payoutNumerators payoutDenominator } }",
        "query Payouts($ids: [ID!]!) { conditions(first: 1000, where: {id_in: $ids}) { id } }",
        f'{{"id": "0x{e}"}}',
        f"0x{f}}}",
        f"0x{g}\\",
        f"0x{h} OR 1=1",
        "$ids",
    ]


def test_hostile_lines_are_rejected_and_never_sent(tmp_path):
    truth = make_truth(300, seed=51)
    valid, smuggled = truth.ids[:200], truth.ids[200:208]  # smuggled ids exist upstream: a leak would fetch them
    hostile = hostile_lines(smuggled)
    lines = valid[:100] + hostile + valid[100:]
    with ReplicaServer(truth.rows.values()) as replica:
        resources = make_resources(tmp_path, replica.url, lines)
        result = backfill(resources)
        asked = replica.requested_ids()
    assert result.success
    metadata = result.asset_materializations_for_node("missing_condition_ids")[0].metadata
    assert metadata["invalid_lines"].value == len(hostile)
    assert metadata["valid_ids"].value == len(valid)
    listed = [int(n) for n in re.findall(r"^\| (\d+) \|", metadata["invalid_line_list"].value, re.MULTILINE)]
    assert listed == list(range(101, 101 + len(hostile)))  # 1-based line numbers of the hostile lines
    assert set(asked) == {f"0x{cid}" for cid in valid}
    assert statuses(resources) == {cid: truth.status(cid) for cid in valid}


def test_invalid_line_list_shows_each_hostile_line_as_one_row(tmp_path):
    resources = make_resources(tmp_path, "http://127.0.0.1:9/unused", ["a|b|c", "x` **bold** `y"])
    result = dg.materialize([missing_condition_ids], resources=resources, tags=FULL_RANGE, raise_on_error=False)
    table = result.asset_materializations_for_node("missing_condition_ids")[0].metadata["invalid_line_list"].value
    rows = [line for line in table.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == 2
    for row in rows:
        cells = re.split(r"(?<!\\)\|", row)[1:-1]
        assert len(cells) == 2, row  # line | starts with
    previews = [re.split(r"(?<!\\)\|", row)[2].strip().replace("\\", "") for row in rows]
    assert previews == ["a|b|c", "x` **bold** `y"]  # shown as written, escaped


def test_hostile_ids_sent_directly_cannot_change_the_query():
    truth = make_truth(300, seed=52)
    real = sorted(truth.resolved())[0]
    hostile = [*hostile_lines(truth.ids[:8]), 'x"]) { id } } query Other { conditions { id } } #', "", real]

    async def fetch(url: str):
        async with GoldskyResource(url=url, backoff_seconds=0.01).client() as client:
            query = (await client.discover()).shape.query()
            before = print_ast(query)
            answer = await client.fetch_batch(query, hostile)
            return before, print_ast(query), answer

    with ReplicaServer(truth.rows.values()) as replica:
        before, after, answer = asyncio.run(fetch(replica.url))
        asked = replica.requested_ids()
    assert before == after
    assert answer.error is None  # a valid query: the ids were data, not text
    assert [entity["id"] for entity in answer.entities] == [f"0x{real}"]  # nothing else matched or was listed
    assert asked == {f"0x{text}": 1 for text in hostile}  # each arrived verbatim as one id_in value


READER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("condition_ids", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
def status(field):  # VmRSS now, VmHWM peak: of this process's own memory since exec
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field))
rss_before = status("VmRSS:")
parsed = module.read_id_file(module.Path(sys.argv[2]))
peak = status("VmHWM:")
ids_bytes = sys.getsizeof(parsed.ids) + sum(map(sys.getsizeof, parsed.ids))
print(json.dumps({"growth": peak - rss_before, "ids_bytes": ids_bytes, "ids": len(parsed.ids),
                  "lines": parsed.lines, "invalid": parsed.invalid_count}))
"""


def write_big_file(path: Path, ids: list[str], garbage: str) -> int:
    """1,000,000 lines: the ids, and a garbage line after every ninth."""
    with path.open("w") as out:
        for start in range(0, len(ids), 9):
            out.write("".join(f"0x{cid}\n" for cid in ids[start : start + 9]))
            out.write(garbage + f"{start}\n")
    return path.stat().st_size


def read_in_subprocesses(*paths: Path) -> list[dict]:
    module = PROJECT / "payout_assets" / "core" / "condition_ids.py"  # by path: the package would import Dagster
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(module), str(path)], stdout=subprocess.PIPE, text=True) for path in paths]
    outputs = [reader.communicate(timeout=120)[0] for reader in readers]
    assert [reader.returncode for reader in readers] == [0] * len(paths)
    return [json.loads(output) for output in outputs]


@pytest.mark.slow
def test_a_million_lines_with_garbage_are_read_in_memory_of_the_ids_alone(tmp_path):
    ids = [os.urandom(32).hex() for _ in range(900_000)]
    short_size = write_big_file(tmp_path / "short.txt", ids, '{"garbage": ')
    long_size = write_big_file(tmp_path / "long.txt", ids, "{ conditions(first: 1000) { id } } " * 20)
    short, long = read_in_subprocesses(tmp_path / "short.txt", tmp_path / "long.txt")
    mib = 2**20
    print(
        f"\nfile sizes {short_size / mib:.0f} / {long_size / mib:.0f} MiB; ids alone {short['ids_bytes'] / mib:.0f} MiB; "
        f"peak RSS growth {short['growth'] / mib:.0f} / {long['growth'] / mib:.0f} MiB"
    )
    for result in (short, long):
        assert (result["lines"], result["ids"], result["invalid"]) == (1_000_000, 900_000, 100_000)
        # The ids, and their de-duplication set (under 96 bytes an id, transient resizes included).
        assert result["growth"] < result["ids_bytes"] + 96 * result["ids"]
    # Doubling the file (long garbage lines) does not move the peak: the file is never held in memory.
    assert long_size - short_size > 60 * mib
    assert abs(long["growth"] - short["growth"]) < 16 * mib


def test_secrets_never_appear_in_logs_events_or_errors(tmp_path, monkeypatch, capfd, caplog):
    api_key, password = "gsk-live-7f3a91c2e5d84b06", "hunter2-secret"
    port = free_port()
    monkeypatch.setenv("GOLDSKY_API_KEY", api_key)
    monkeypatch.setenv("CLICKHOUSE_URL", f"http://default:{password}@127.0.0.1:{port}/default")
    caplog.set_level(logging.DEBUG)
    truth = make_truth(300, seed=61)
    instance = dg.DagsterInstance.ephemeral()
    texts: list[str] = []

    with ReplicaServer(truth.rows.values(), require_token=api_key) as replica:
        resources = make_resources(tmp_path, replica.url, truth.ids, api_key=dg.EnvVar("GOLDSKY_API_KEY"))
        resources["clickhouse"] = ClickHouseResource(url=dg.EnvVar("CLICKHOUSE_URL"))
        runs = [backfill(resources, instance=instance)]  # the pre-flight check refuses: ClickHouse is down
        assert not runs[0].success
        # ClickHouse dies after the pre-flight: the fetch (with the key) works, the load fails.
        two = [missing_condition_ids, goldsky_payouts]  # the input; the fetch and the load
        runs.append(dg.materialize(two, selection=two[1:], resources=resources, instance=instance, tags=FULL_RANGE, raise_on_error=False))
        assert not runs[1].success
        assert set(statuses(resources).values()) >= {"resolved", "unresolved"}  # the key was accepted
        texts += [str(resources["files"].read("statuses", shard).to_dicts()) for shard in SHARDS]
        # The endpoint refuses the key: the probe, then the fetch's own discovery, fail.
        replica.configure(require_token="another-key")
        runs.append(dg.materialize(two, resources=resources, instance=instance, tags=FULL_RANGE, raise_on_error=False))
        runs.append(dg.materialize(two, selection=two[1:], resources=resources, instance=instance, tags=FULL_RANGE, raise_on_error=False))
        assert not runs[2].success and not runs[3].success
        assert replica.stats()["bearer_seen"]

    try:
        with ClickHouseResource(url=os.environ["CLICKHOUSE_URL"]).get_client():
            pass
    except Exception as error:  # noqa: BLE001 - its text is what is checked
        texts.append("".join(traceback.format_exception(error)))
        texts.append(repr(error))
    for run in runs:
        texts += [serialize_value(event) for event in run.all_events]
        texts += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
        texts.append(serialize_value(instance.get_run_by_id(run.run_id)))
    captured = capfd.readouterr()
    texts += [captured.out, captured.err, caplog.text]
    everything = "\n".join(texts)

    assert f"127.0.0.1:{port}" in everything and "HTTP 401" in everything  # the failures were captured
    assert api_key not in everything
    assert password not in everything


@pytest.mark.parametrize("password", ["hunter2@xyzzy", "hunter2#xyzzy"])
def test_passwords_with_url_special_characters_never_leak(password):
    clickhouse = ClickHouseResource(url=f"http://default:{password}@127.0.0.1:{free_port()}/default")
    with pytest.raises(Exception) as failure:
        with clickhouse.get_client():
            pass
    text = clickhouse.display_url + "\n" + "".join(traceback.format_exception(failure.value))
    assert "hunter2" not in text and "xyzzy" not in text, text


def test_a_percent_encoded_password_reaches_clickhouse_decoded(monkeypatch):
    seen = {}

    def fake_get_client(**options):
        seen.update(options)
        raise OSError("no server in this test")

    monkeypatch.setattr("clickhouse_connect.get_client", fake_get_client)
    with pytest.raises(Exception):
        with ClickHouseResource(url="http://default:hunter2%40secret@127.0.0.1:8123/default").get_client():
            pass
    assert seen["password"] == "hunter2@secret"
