"""What importing the package does before anything else: the allocator settings that must precede
polars and chDB, and what it leaves to the steps that need it."""

import os
import subprocess
import sys

import pytest

PROBE = (
    "import sys, dagster; polars_first = 'polars' in sys.modules; "
    "import os, payout_assets, polars; "
    "print(polars_first, os.environ['_RJEM_MALLOC_CONF'].split(',')[-2:], os.environ['JE_MALLOC_CONF'].split(',')[-2:])"
)


@pytest.mark.slow  # two fresh interpreters that import the package
def test_the_allocators_return_freed_pages_whatever_the_parent_process_passed_down():
    bare = {key: value for key, value in os.environ.items() if key not in ("_RJEM_MALLOC_CONF", "JE_MALLOC_CONF")}
    # A parent that loaded polars (a script, this test) passes polars' defaults down; ours come last and win.
    inherited_settings = {"_RJEM_MALLOC_CONF": "dirty_decay_ms:500,muzzy_decay_ms:1000", "JE_MALLOC_CONF": "dirty_decay_ms:5000"}
    for inherited in ({}, inherited_settings):
        run = subprocess.run([sys.executable, "-c", PROBE], env={**bare, **inherited}, capture_output=True, text=True, check=True)
        # Set before polars loaded; chDB loads at the first client.
        assert run.stdout.strip() == "False ['dirty_decay_ms:0', 'muzzy_decay_ms:0'] ['dirty_decay_ms:0', 'muzzy_decay_ms:0']"


def test_loading_the_code_location_leaves_eth_abi_to_the_chain():
    """eth-abi takes 0.23 s to import: a run, sensor tick or code-location load with the chain
    off does not pay it."""
    probe = "import sys, payout_assets.definitions; print(sorted(m for m in ('eth_abi', 'eth_utils') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
