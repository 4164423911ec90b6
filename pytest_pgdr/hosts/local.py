"""Where a node's processes and files live. The local host runs them on this machine.

A node never branches on where it runs: it asks its host to make directories, write files,
start the server, signal it and run client programs. Another host (a container) provides the
same methods (the contract is :class:`~pytest_pgdr.hosts.base.Host`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_pgdr.hosts.base import (
    FREEZE,
    LOCAL_FILES,
    ServerProcess,
    no_disk_full,
    no_partition,
    no_wal_limit,
)
from pytest_pgdr.hosts.files import LocalFiles
from pytest_pgdr.hosts.osuser import OsUser
from pytest_pgdr.hosts.procs import child_pids, descendants, gone
from pytest_pgdr.hosts.rundir import RunDir
from pytest_pgdr.hosts.shm import mapped_segments, record_segments, remove_dead_segments

HBA = """\
# pytest-pgdr: the socket directory is private (0700, server user only), TCP needs a password.
local   all             all                                     trust
local   replication     all                                     trust
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
"""
REAP_GRACE = 0.5  # after SIGQUIT, before its children get SIGQUIT directly
REAP_WAIT = 10.0  # then, before SIGKILL of everything
CHILDREN_EXIT = 5.0  # for a killed postmaster's children to notice and exit


class LocalHost(LocalFiles):
    """Processes on this machine, run as the unprivileged server user."""

    kind = "local"  # descriptive only: callers check capabilities
    capabilities = frozenset({FREEZE, LOCAL_FILES})
    client_address = "127.0.0.1"

    def __init__(self, user: OsUser, run: RunDir) -> None:
        super().__init__(user)
        self.run_dir = run
        self._frozen: dict[int, list[int]] = {}  # postmaster PID -> process groups stopped
        self._killed: list[tuple[list[int], set[str]]] = []  # processes, segments they map

    # processes --------------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "TZ", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(LC_ALL="C", HOME=str(self.run_dir.path), PGAPPNAME="pytest-pgdr")
        return env

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a program as the server user, capturing its output."""
        return subprocess.run(
            list(argv),
            env={**self.base_env(), **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            cwd="/",
            **self.user.popen_kwargs(),
        )

    # addressing: how servers listen and how they reach each other --------------------------
    def listen_addresses(self) -> str:
        return self.client_address

    def server_port(self, node_name: str, client_port: int) -> int:
        """The port the server listens on (locally: the port clients use)."""
        return client_port

    def peer_address(self, node_name: str) -> str:
        """How another server reaches ``node_name`` (for primary_conninfo, pg_rewind)."""
        return self.client_address

    def hba_lines(self) -> str:
        return HBA

    def close(self) -> None:
        """Remove what servers killed here left in shared memory."""
        self._remove_dead_segments()

    # servers ----------------------------------------------------------------------------
    def spawn_server(
        self, argv: Sequence[str], log_path: Path, host_port: int = 0
    ) -> subprocess.Popen[bytes]:
        """Start a postmaster in its own process group, its output appended to ``log_path``."""
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.base_env(),
                cwd="/",
                start_new_session=True,
                **self.user.popen_kwargs(),
            )

    def signal(self, proc: ServerProcess, sig: int, group: bool = False) -> None:
        if proc.poll() is not None:
            return  # reaped: its PID may be another process's by now
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)

    def kill_group(self, proc: ServerProcess) -> None:
        """SIGKILL the postmaster (its children exit when they see it gone).

        The shared memory segments its processes map outlive them: they are noted here (and
        in the run directory, for the sweep) and removed once the processes are gone."""
        if proc.poll() is None:
            pids = [proc.pid, *descendants(proc.pid)]
            segments = mapped_segments(pids)
            record_segments(self.run_dir.path, segments)
            self._killed.append((pids, segments))
        self.signal(proc, signal.SIGKILL, group=True)

    def _remove_dead_segments(self) -> None:
        """Remove the segments of killed servers, once their processes are gone."""
        for pids, segments in self._killed:
            deadline = time.monotonic() + CHILDREN_EXIT
            while not all(gone(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.005)
            remove_dead_segments(segments)
        self._killed.clear()

    def reap(self, proc: ServerProcess) -> None:
        """Wait for a postmaster sent SIGQUIT. A SIGQUIT that reaches the archiver while it
        runs archive_command is lost (system() ignores it), and the postmaster then waits 5 s
        before SIGKILL: after a short grace its children get SIGQUIT directly, and after a
        longer one the postmaster and every process below it get SIGKILL."""
        try:
            self._wait_quit(proc)
        finally:
            self._remove_dead_segments()

    def _wait_quit(self, proc: ServerProcess) -> None:
        try:
            proc.wait(timeout=REAP_GRACE)
            return
        except subprocess.TimeoutExpired:
            for child in child_pids(proc.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGQUIT)
        try:
            proc.wait(timeout=REAP_WAIT)
        except subprocess.TimeoutExpired:
            family = descendants(proc.pid)
            self.kill_group(proc)
            for pid in family:  # a stopped child would never see the postmaster gone
                for sig in (signal.SIGKILL, signal.SIGCONT):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)
            proc.wait()

    # faults -----------------------------------------------------------------------------
    def freeze(self, proc: ServerProcess) -> None:
        """SIGSTOP the postmaster's process group first (a stopped postmaster forks no more),
        then each child's: PostgreSQL's children are process-group leaders of their own."""
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGSTOP)
        groups = self._frozen.setdefault(proc.pid, [proc.pid])
        for child in child_pids(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGSTOP)
                groups.append(child)

    def thaw(self, proc: ServerProcess) -> None:
        """SIGCONT the stopped groups, the children's first, the postmaster's last."""
        for group in reversed(self._frozen.pop(proc.pid, [proc.pid])):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGCONT)

    def disconnect(self, proc: ServerProcess) -> None:
        raise no_partition()

    def reconnect(self, proc: ServerProcess) -> None:
        raise no_partition()

    def limit_wal(self, node_name: str, datadir: Path, size: str) -> None:
        raise no_wal_limit(node_name)

    def fill_wal(self, node_name: str) -> int:
        raise no_disk_full(node_name)

    def relieve_wal(self, node_name: str) -> None:
        raise no_disk_full(node_name)
