"""Watchdog: ``python -m pytest_pgdr.hosts.watchdog RUN_DIR``.

Started detached by each pytest process. It polls the run directory's owner; when the owner is
gone (killed, crashed) it stops the servers left in the run directory and removes it. It exits
by itself as soon as the run directory disappears (normal cleanup).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pytest_pgdr.hosts.rundir import RunDir
from pytest_pgdr.hosts.sweep import kill_servers_in, owner_alive

POLL_SECONDS = 0.25


def module_name() -> str:
    """This module's name, for ``python -m`` (derived, so that a move cannot break it)."""
    return __spec__.name if __spec__ is not None else __name__


def start_watchdog(run: RunDir) -> None:
    """Start a detached watchdog that sweeps ``run`` if this process is killed."""
    run.watchdog = subprocess.Popen(
        [sys.executable, "-m", module_name(), str(run.path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _remove_containers(run_dir: Path) -> None:
    """Containers of the docker backend carry the run directory in a label."""
    try:
        from pytest_pgdr.hosts.docker import remove_run_containers
    except ImportError:
        return
    remove_run_containers(run_dir)


def watch(run_dir: Path) -> None:
    owner = run_dir / "owner"
    while run_dir.exists():
        if not owner_alive(owner):
            kill_servers_in(run_dir)
            _remove_containers(run_dir)
            shutil.rmtree(run_dir, ignore_errors=True)
            return
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    # a 'pkill -f pytest' reaches this process too: it must outlive its owner to clean up, and
    # exits by itself once the run directory is gone
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    watch(Path(sys.argv[1]))
