"""`make demo` / `make dev` (scripts/offline.py) as an operator meets them when something is wrong."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
