"""What importing the package does before anything else: the one setting that must precede polars."""

import os
import subprocess
import sys

import pytest

PROBE = (
    "import sys, dagster; polars_first = 'polars' in sys.modules; "
    "import os, payout_assets, polars; print(polars_first, os.environ['_RJEM_MALLOC_CONF'].split(',')[-2:])"
)


@pytest.mark.slow  # two fresh interpreters that import the package
def test_polars_allocator_returns_freed_pages_whatever_the_parent_process_passed_down():
    bare = {key: value for key, value in os.environ.items() if key != "_RJEM_MALLOC_CONF"}
    # A parent that loaded polars (a script, this test) passes polars' defaults down; ours come last and win.
    for inherited in ({}, {"_RJEM_MALLOC_CONF": "dirty_decay_ms:500,muzzy_decay_ms:1000"}):
        run = subprocess.run([sys.executable, "-c", PROBE], env={**bare, **inherited}, capture_output=True, text=True, check=True)
        assert run.stdout.strip() == "False ['dirty_decay_ms:0', 'muzzy_decay_ms:0']"  # set before polars loaded
