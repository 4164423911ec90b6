"""Run directories, port claims, process helpers and the orphan sweep, under their old names.

They live in :mod:`~pytest_pgdr.hosts.rundir`, :mod:`~pytest_pgdr.hosts.procs` and
:mod:`~pytest_pgdr.hosts.sweep`.
"""

from pytest_pgdr.hosts.procs import child_pids, process_start_ticks
from pytest_pgdr.hosts.rundir import RunDir
from pytest_pgdr.hosts.sweep import RUN_PREFIX, kill_servers_in, owner_alive, sweep_orphans

__all__ = [
    "RUN_PREFIX",
    "RunDir",
    "child_pids",
    "kill_servers_in",
    "owner_alive",
    "process_start_ticks",
    "sweep_orphans",
]
