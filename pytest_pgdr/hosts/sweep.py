"""The sweep that stops the servers and removes the run directories a killed run left.

A run directory whose owner process is gone is an orphan: its servers are stopped (SIGKILL of
every process working in it) and the directory removed, either by the watchdog started with the run
or by the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

from pytest_pgdr.hosts.procs import gone, process_start_ticks, working_in
from pytest_pgdr.hosts.shm import mapped_segments, recorded_segments, remove_dead_segments

RUN_PREFIX = "pgdr-run-"
KILL_WAIT = 10.0  # for killed processes to be gone


def owner_alive(owner_file: Path) -> bool:
    try:
        pid_text, ticks_text = owner_file.read_text().split()
    except (OSError, ValueError):
        return False
    return process_start_ticks(int(pid_text)) == int(ticks_text)


def kill_servers_in(run_dir: Path, wait: float = KILL_WAIT) -> int:
    """SIGKILL every process working in ``run_dir``: the servers and all their children, even
    stopped (frozen) ones, which would otherwise stay stopped forever; SIGCONT follows for
    good measure. Then, once they are gone, remove the shared memory segments they mapped or
    that killed servers of the run left (:mod:`~pytest_pgdr.hosts.shm`). Returns how many
    processes were killed."""
    pids = [pid for pid in working_in(run_dir) if pid != os.getpid()]
    segments = mapped_segments(pids) | recorded_segments(run_dir)
    for pid in pids:
        for sig in (signal.SIGKILL, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    remove_dead_segments(segments)
    return len(pids)


def sweep_orphans(base: Path) -> list[Path]:
    """Stop the servers and remove the run directories of pytest processes that are gone."""
    swept = []
    for run_dir in base.glob(RUN_PREFIX + "*"):
        if not run_dir.is_dir() or owner_alive(run_dir / "owner"):
            continue
        kill_servers_in(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        swept.append(run_dir)
    ports = base / f"pytest-pgdr-ports-{os.geteuid()}"
    for claim in ports.glob("*") if ports.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            if process_start_ticks(int(claim.read_text().split()[0])) is None:
                claim.unlink()
    return swept
