"""What importing the package does before anything else: the one setting that must precede polars."""

import os
import subprocess
import sys


def test_polars_allocator_returns_freed_pages_unless_the_user_said_otherwise():
    probe = (
        "import sys, dagster; polars_first = 'polars' in sys.modules; "
        "import os, payout_assets, polars; print(polars_first, os.environ['_RJEM_MALLOC_CONF'].split(',')[-2:])"
    )
    env = {key: value for key, value in os.environ.items() if key != "_RJEM_MALLOC_CONF"}
    ours = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    # Set before polars loaded, which appends it to its own defaults: the last value of an option wins.
    assert ours.stdout.strip() == "False ['dirty_decay_ms:0', 'muzzy_decay_ms:0']"
    theirs = subprocess.run([sys.executable, "-c", probe], env={**env, "_RJEM_MALLOC_CONF": "narenas:1"},
                            capture_output=True, text=True, check=True)
    assert theirs.stdout.strip() == "False ['muzzy_decay_ms:1000', 'narenas:1']"
