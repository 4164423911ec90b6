"""A Patroni node is two process trees: Patroni itself, and the postmaster it starts in a
session of its own (so killing Patroni's process group leaves PostgreSQL running).

:class:`NodeHost` is the host a Patroni node's :class:`~pytest_pgdr.cluster.node.Node` gets:
it delegates to the real host, except that a whole-node fault (``kill_group``, ``freeze``,
``thaw``, ``reap``) reaches both trees. So ``faults.freeze(node)`` and ``node.crash()`` work
on a Patroni node unchanged, and nothing above asks which manager a node has.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.hosts.files import FilesVia
from pytest_pgdr.hosts.procs import descendants, gone
from pytest_pgdr.hosts.shm import mapped_segments, record_segments, remove_dead_segments

if TYPE_CHECKING:
    from pytest_pgdr.hosts.base import Host, ServerProcess

EXIT_WAIT = 10.0  # for a killed postmaster's children to exit


def postmaster_pid(datadir: Path) -> int | None:
    """The live postmaster of ``datadir`` (postmaster.pid, checked against the process's
    working directory: a stale file from a crash names a dead or unrelated process)."""
    try:
        text = (datadir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    if not text.isdigit() or gone(int(text)):
        return None
    try:
        cwd = Path(os.readlink(f"/proc/{text}/cwd"))
    except OSError:
        return None
    return int(text) if cwd == datadir.resolve() else None


def _signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class NodeHost(FilesVia):
    """The host of one Patroni node: ``real`` for everything, both process trees for faults."""

    def __init__(self, real: Host, datadir: Path) -> None:
        self.real = real
        self.files = real
        self.datadir = datadir
        self.capabilities = real.capabilities
        self.client_address = real.client_address
        self.user = real.user
        self.run_dir = real.run_dir
        self._frozen: list[int] = []
        self._segments: set[str] = set()

    # whole-node faults ------------------------------------------------------------------
    def kill_group(self, proc: ServerProcess) -> None:
        """SIGKILL Patroni's process group and the postmaster (its children follow)."""
        self.real.kill_group(proc)
        self.kill_postmaster()

    def kill_postmaster(self) -> None:
        pid = postmaster_pid(self.datadir)
        if pid is None:
            return
        family = [pid, *descendants(pid)]
        segments = mapped_segments(family)
        record_segments(self.run_dir.path, segments)
        self._segments |= segments
        _signal_all(family, signal.SIGCONT)  # a frozen child would never see it gone
        _signal_all([pid], signal.SIGKILL)
        deadline = time.monotonic() + EXIT_WAIT
        while not all(gone(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.01)

    def freeze(self, proc: ServerProcess) -> None:
        """SIGSTOP Patroni, then the postmaster (it forks no more), then its children."""
        self.real.freeze(proc)
        pid = postmaster_pid(self.datadir)
        if pid is not None:
            _signal_all([pid], signal.SIGSTOP)
            self._frozen = [pid, *descendants(pid)]
            _signal_all(self._frozen[1:], signal.SIGSTOP)

    def thaw(self, proc: ServerProcess) -> None:
        """SIGCONT the children, the postmaster, then Patroni."""
        frozen, self._frozen = self._frozen, []
        _signal_all(list(reversed(frozen)), signal.SIGCONT)
        self.real.thaw(proc)

    def reap(self, proc: ServerProcess) -> None:
        """Wait for Patroni (sent SIGTERM: it stops PostgreSQL first), then make sure the
        postmaster is gone too."""
        try:
            proc.wait(timeout=EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self.real.kill_group(proc)
            proc.wait()
        self.kill_postmaster()
        self.close()

    def close(self) -> None:
        remove_dead_segments(self._segments)
        self._segments.clear()
        self.real.close()

    # everything else is the real host's -------------------------------------------------
    def signal(self, proc: ServerProcess, sig: int, group: bool = False) -> None:
        self.real.signal(proc, sig, group)

    def spawn_server(
        self, argv: Sequence[str], log_path: Path, host_port: int = 0
    ) -> ServerProcess:
        return self.real.spawn_server(argv, log_path, host_port)

    def disconnect(self, proc: ServerProcess) -> None:
        self.real.disconnect(proc)

    def reconnect(self, proc: ServerProcess) -> None:
        self.real.reconnect(proc)

    def base_env(self) -> dict[str, str]:
        return self.real.base_env()

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.real.run(argv, env, input, timeout)

    def listen_addresses(self) -> str:
        return self.real.listen_addresses()

    def server_port(self, node_name: str, client_port: int) -> int:
        return self.real.server_port(node_name, client_port)

    def peer_address(self, node_name: str) -> str:
        return self.real.peer_address(node_name)

    def hba_lines(self) -> str:
        return self.real.hba_lines()

    def limit_wal(self, node_name: str, datadir: Path, size: str) -> object:
        return self.real.limit_wal(node_name, datadir, size)

    def fill_wal(self, node_name: str) -> int:
        return self.real.fill_wal(node_name)

    def relieve_wal(self, node_name: str) -> None:
        self.real.relieve_wal(node_name)
