"""One run at a time per data directory, whoever starts it: the UI, the daemon or a shell.

The run queue's `max_concurrent_runs` holds only for runs it launches; a shell's
`dagster asset materialize` goes around it. So each run holds a lock file in the shard
directory (and in the chDB directory) from its first step to its last: a second run waits
for it, saying what it waits for, and then fetches only what the first left unsettled.
The kernel releases the lock when its process dies, so a killed run never leaves it held.
"""

import atexit
import gc
import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
from filelock import FileLock, Timeout
from pydantic import Field

from payout_assets.resources.clickhouse import ClickHouseResource
from payout_assets.resources.payout_files import PayoutFiles

LOCK_FILE = "run.lock"
WAIT_SECONDS = 6 * 3600.0  # longer than any backfill; then the run fails saying who holds the lock
LOG_EVERY_SECONDS = 60.0


class RunLockTimeout(RuntimeError):
    """Another run held the directory for longer than this run would wait."""


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
        return f"run {holder['run_id']} (pid {holder['pid']}, since {holder['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def directory_lock(directory: Path, context: dg.InitResourceContext, wait_seconds: float) -> Iterator[None]:
    """Hold `directory`'s run lock while the block runs, waiting at most `wait_seconds` for it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    lock = FileLock(path)
    started = time.monotonic()
    try:
        lock.acquire(timeout=0)
    except Timeout:
        context.log.info(f"waiting for the run lock {path}, held by {_holder(path)}: this run starts when that one ends")
        while True:
            remaining = started + wait_seconds - time.monotonic()
            if remaining <= 0:
                raise RunLockTimeout(
                    f"{directory} is in use by {_holder(path)}; gave up after {wait_seconds:.0f} s. "
                    "Let that run end (or cancel it), then launch this one again."
                ) from None
            try:
                lock.acquire(timeout=min(LOG_EVERY_SECONDS, remaining))
                break
            except Timeout:
                context.log.info(f"still waiting for the run lock {path} after {time.monotonic() - started:.0f} s")
        context.log.info(f"took the run lock {path} after waiting {time.monotonic() - started:.1f} s")
    since = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run_id = context.dagster_run.run_id if context.dagster_run else "none (a direct call)"
    path.write_text(json.dumps({"run_id": run_id, "pid": os.getpid(), "since": since}))
    try:
        yield
    finally:
        lock.release()


class RunLock(dg.ConfigurableResource):
    """Every asset and check asks for it, so a run holds it from its first step to its last.

        RunLock(files=PayoutFiles(...), clickhouse=ClickHouseResource(url="chdb:///abs/dir"))
    """

    files: PayoutFiles
    clickhouse: ClickHouseResource
    wait_seconds: float = Field(
        default=WAIT_SECONDS, description="How long a run waits for another run's lock before it fails."
    )

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["RunLock"]:
        skip_final_collection()
        directories = {Path(self.files.shards_dir).resolve()}
        if self.clickhouse.is_embedded:
            directories.add(self.clickhouse.embedded_directory)
        with ExitStack() as held:
            for directory in sorted(directories):  # one order for every run: two runs never deadlock
                held.enter_context(directory_lock(directory, context, self.wait_seconds))
            yield self


def skip_final_collection() -> None:
    """Let the run's process exit without Python's last full garbage collection of every object
    it holds (Dagster's included): 0.8 of the 0.9 s between a 20,000-id run's last step and its
    exit. Objects are still freed as their modules are; only cycles are left to the OS, as they
    are when a process is killed. Registered once however many runs a process executes."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
