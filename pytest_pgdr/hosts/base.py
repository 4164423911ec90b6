"""The Host contract: what a node, the archive and the topology may ask of where they run.

A host makes directories and files, runs client programs, starts and signals servers, and
injects the faults it is capable of. Nothing above the hosts signals a PID or asks which
backend it is on: it asks the host, and checks :attr:`Host.capabilities` before a fault.

A host lacking a capability raises :class:`FaultUnsupported` (reported as a skip) from the
methods that need it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pytest_pgdr.basics.errors import VersionSkip
from pytest_pgdr.hosts.files import Files
from pytest_pgdr.hosts.osuser import OsUser
from pytest_pgdr.hosts.rundir import RunDir

FREEZE = "freeze"  # stop every process of a server, and let it continue
PARTITION = "partition"  # cut a server off the network, and join it again
WAL_LIMIT = "wal_limit"  # a size-limited pg_wal that can be filled to the last byte
LOCAL_FILES = "local_files"  # the servers' files are on this machine's disk, at their paths


class FaultUnsupported(VersionSkip):
    """The fault cannot be injected on this backend (reported as a skip, like VersionSkip)."""


LOCAL_DISK_WHY = (
    "a size-limited file system for one node's pg_wal needs the Docker backend"
    " (a tmpfs volume); filling the data directory's file system here would fill"
    " this machine's disk for every other process too"
)
ON_DOCKER = "Run this drill on the Docker backend"


def no_partition() -> FaultUnsupported:
    return FaultUnsupported(
        "Network partitions are not supported on the local backend",
        "local servers share this machine's loopback; there is no network to cut",
        ON_DOCKER,
    )


def no_wal_limit(node_name: str) -> FaultUnsupported:
    return FaultUnsupported(
        f"A size-limited pg_wal for {node_name} is not supported on the local backend",
        LOCAL_DISK_WHY,
        ON_DOCKER,
    )


def no_disk_full(node_name: str) -> FaultUnsupported:
    return FaultUnsupported(
        f"Injecting a full disk into {node_name} is not supported on the local backend",
        LOCAL_DISK_WHY,
        ON_DOCKER,
    )


def require_local_files(host: Host, what: str) -> None:
    """:class:`FaultUnsupported` (a skip) unless the servers' files are on this machine: the
    backup tools, the HA stack and real backups read and write them here."""
    if LOCAL_FILES not in host.capabilities:
        raise FaultUnsupported(
            f"{what} needs the servers' files on this machine",
            "this Docker engine keeps them in its volumes (--pgdr-docker-storage volume, or a"
            " DOCKER_HOST on another machine)",
            "Run it with the engine on this machine (--pgdr-docker-storage bind) or on the"
            " local backend",
        )


def no_freeze(node_name: str) -> FaultUnsupported:
    return FaultUnsupported(
        f"Freezing {node_name} is not supported on this backend",
        "it cannot stop a server's processes and let them continue",
        "Run this drill on the local or the Docker backend",
    )


class ServerProcess(Protocol):
    """A running postmaster, as :meth:`Host.spawn_server` returns it (like a Popen)."""

    @property
    def pid(self) -> int:
        """The postmaster's PID as the server sees it (postmaster.pid names it)."""

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; ``subprocess.TimeoutExpired`` if still running after ``timeout``."""


class Host(Files, Protocol):
    """Where a topology's servers and files live (this machine, or containers)."""

    capabilities: frozenset[str]
    client_address: str
    user: OsUser
    run_dir: RunDir

    # client programs
    def base_env(self) -> dict[str, str]: ...

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]: ...

    # addressing
    def listen_addresses(self) -> str: ...

    def server_port(self, node_name: str, client_port: int) -> int: ...

    def peer_address(self, node_name: str) -> str: ...

    def hba_lines(self) -> str: ...

    # servers
    def spawn_server(
        self, argv: Sequence[str], log_path: Path, host_port: int = 0
    ) -> ServerProcess: ...

    def signal(self, proc: ServerProcess, sig: int, group: bool = False) -> None: ...

    def kill_group(self, proc: ServerProcess) -> None:
        """SIGKILL the server and all its processes at once (a power loss)."""

    def reap(self, proc: ServerProcess) -> None:
        """Wait for a server already sent SIGQUIT; nudge stuck children, finally kill it all.

        Leaves no process or container of that server behind, and touches nothing else.
        """

    # faults (FaultUnsupported without the capability)
    def freeze(self, proc: ServerProcess) -> None: ...

    def thaw(self, proc: ServerProcess) -> None: ...

    def disconnect(self, proc: ServerProcess) -> None: ...

    def reconnect(self, proc: ServerProcess) -> None: ...

    def limit_wal(self, node_name: str, datadir: Path, size: str) -> object: ...

    def fill_wal(self, node_name: str) -> int: ...

    def relieve_wal(self, node_name: str) -> None: ...

    def close(self) -> None: ...
