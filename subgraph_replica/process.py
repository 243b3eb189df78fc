"""The replica in a process of its own, for the demo, the UI and the benchmark.

A separate process keeps the replica's CPU out of the measured pipeline and lets a
test kill the pipeline while the replica keeps its request counts.
"""

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_SECONDS = 120.0  # the local chain builds its genesis state first


@contextmanager
def module_process(module: str, *options: str) -> Iterator[str]:
    """Start `python -m MODULE OPTIONS… --port-file F`; yield the URL it writes to F; stop it."""
    with tempfile.TemporaryDirectory(prefix=f"{module}-") as scratch:
        port_file = Path(scratch) / "url"
        process = subprocess.Popen(
            [sys.executable, "-m", module, *options, "--port-file", str(port_file)],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not port_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"python -m {module} did not start (exit code {process.poll()})")
                time.sleep(0.05)
            yield port_file.read_text().strip()
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def replica_process(fixture: Path, *options: str) -> Iterator[str]:
    """Start `python -m subgraph_replica --fixture FIXTURE OPTIONS…`; yield its URL; stop it."""
    with module_process("subgraph_replica", "--fixture", str(fixture), *options) as url:
        yield url
