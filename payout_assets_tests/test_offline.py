"""`make demo` / `make dev` (scripts/offline.py) as an operator meets them when something is wrong."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from payout_assets_tests.support.processes import free_port

pytestmark = pytest.mark.slow  # process-level: `make test-fast` skips it


PROJECT = Path(__file__).resolve().parent.parent


def test_a_demo_that_cannot_start_says_why_in_one_line_without_a_traceback(tmp_path: Path):
    env = {**os.environ, "CLICKHOUSE_URL": "data/chdb", "DAGSTER_HOME": str(tmp_path)}
    demo = subprocess.run([sys.executable, "-m", "scripts.offline", "demo"], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 1
    assert "Traceback" not in demo.stderr
    [line] = demo.stderr.strip().splitlines()
    assert line.startswith("make demo stopped: ") and "chdb:///absolute/dir" in line


def test_the_demo_chain_holds_the_fixture_a_few_wrong_subgraph_rows_and_events(tmp_path: Path):
    """The local chain the demo starts: every condition of the subgraph fixture, half the ids the
    subgraph lacks, and CHAIN_BORN conditions resolved through transactions, of which the subgraph
    holds all but CHAIN_ONLY, CHAIN_DISAGREEMENTS of them with the opposite payout."""
    from chain_replica import LocalChain, load_resolutions, load_seeds
    from scripts.demo_data import CHAIN_BORN, CHAIN_DISAGREEMENTS, CHAIN_ONLY, write_demo_chain, write_demo_fixture
    from subgraph_replica import load_fixture

    ids = [f"{i:064x}" for i in range(1, 41)]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    paths = {name: tmp_path / f"{name}.csv" for name in ("fixture", "seeds", "resolutions")}
    write_demo_fixture(tmp_path / "ids.txt", paths["fixture"], [])
    absent = set(ids) - {row.id[2:] for row in load_fixture(paths["fixture"])}
    made = write_demo_chain(tmp_path / "ids.txt", paths["fixture"], paths["seeds"], paths["resolutions"], tmp_path / "day2.txt")
    assert made == {"chain_born": CHAIN_BORN, "absent_resolved_on_chain": len(sorted(absent)[::2])}

    planned = load_resolutions(paths["resolutions"])
    chain = LocalChain(load_seeds(paths["seeds"]))
    for item in planned:
        assert chain.resolve(item.question_id, item.numerators, item.timestamp).hex() == item.condition_id
    subgraph = {row.id[2:]: tuple(map(int, row.payout_numerators)) for row in load_fixture(paths["fixture"])}
    in_subgraph = [item for item in planned if item.condition_id in subgraph]
    assert len(in_subgraph) == CHAIN_BORN - CHAIN_ONLY
    assert sum(subgraph[item.condition_id] != item.numerators for item in in_subgraph) == CHAIN_DISAGREEMENTS
    day_two = (tmp_path / "day2.txt").read_text().split()
    assert day_two == [*ids, *(item.condition_id for item in planned)]


def test_make_dev_on_a_taken_port_stops_at_once_saying_so():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dev = subprocess.run([sys.executable, "-m", "scripts.offline", "dev", "--port", str(port)], cwd=PROJECT,
                             capture_output=True, text=True, timeout=60)
    assert dev.returncode == 1 and dev.stdout == ""
    assert dev.stderr.strip().splitlines() == [
        f"make dev stopped: RuntimeError: port {port} on 127.0.0.1 is in use; choose another with `make dev PORT=...`"
    ]


def test_ctrl_c_stops_make_dev_quietly_with_everything_it_started(tmp_path: Path):
    """Ctrl-C in the terminal: SIGINT to the whole foreground process group (the script, its
    replicas, `dagster dev` and the webserver and daemon under it), once the UI answers."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
           "PAYOUT_SHARDS_DIR": str(tmp_path / "shards"), "PAYOUT_INPUT_IDS": str(PROJECT / "data" / "condition_ids_missing_api.txt")}
    port = free_port()
    with subprocess.Popen([sys.executable, "-m", "scripts.offline", "dev", "--port", str(port)], cwd=PROJECT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True) as dev:
        try:
            assert ui_answers(port, dev, deadline=time.monotonic() + 240), "the UI never answered"
            os.killpg(dev.pid, signal.SIGINT)
            output, _ = dev.communicate(timeout=60)
        finally:
            if dev.poll() is None:
                os.killpg(dev.pid, signal.SIGKILL)
    assert dev.returncode in (0, 130), output
    assert "Traceback" not in output, output  # Dagster's own "KeyboardInterrupt received" line is its log, not a trace
    assert output.rstrip().endswith("Dagster services shut down."), output
    assert group_gone(dev.pid, deadline=time.monotonic() + 30), "a process `make dev` started outlived it"


def ui_answers(port: int, process: subprocess.Popen, deadline: float) -> bool:
    """Whether the webserver on `port` answers GraphQL before the deadline (and the process lives)."""
    query = json.dumps({"query": "{ version }"}).encode()
    while time.monotonic() < deadline and process.poll() is None:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", query, {"Content-Type": "application/json"})
            return "version" in json.loads(urllib.request.urlopen(request, timeout=5).read())["data"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    return False


def group_gone(pgid: int, deadline: float) -> bool:
    """Whether every process of the group has exited before the deadline."""
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False
