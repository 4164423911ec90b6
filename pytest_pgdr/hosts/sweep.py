"""The sweep that stops the servers and removes the run directories a killed run left.

A run directory whose owner process is gone is an orphan: its servers are stopped (SIGKILL of
their process groups) and the directory removed, either by the watchdog started with the run
or by the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

from pytest_pgdr.hosts.procs import process_start_ticks

RUN_PREFIX = "pgdr-run-"


def owner_alive(owner_file: Path) -> bool:
    try:
        pid_text, ticks_text = owner_file.read_text().split()
    except (OSError, ValueError):
        return False
    return process_start_ticks(int(pid_text)) == int(ticks_text)


def _postmaster_pids(run_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for pidfile in run_dir.rglob("postmaster.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            found.append((int(pidfile.read_text().splitlines()[0]), pidfile.parent))
    return found


def _is_postmaster_of(pid: int, datadir: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == datadir.resolve()
    except OSError:
        return False


def kill_servers_in(run_dir: Path) -> int:
    """SIGKILL every server whose data directory lies in ``run_dir``; returns how many."""
    killed = 0
    for pid, datadir in _postmaster_pids(run_dir):
        if not _is_postmaster_of(pid, datadir):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
            killed += 1
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return killed


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
