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
