"""Faults to inject into a running topology, on the local and the Docker backend.

Each fault is a context manager that heals itself on exit, whatever happened inside::

    with freeze(node):
        ...                      # the node is stopped (SIGSTOP / docker pause)

or a pair of calls: ``f = freeze(node); f.start(); ...; f.stop()``. ``heal_all()`` undoes every
fault still active (for teardown code). A fault the node's backend cannot inject raises
:class:`FaultUnsupported`, which the pytest plugin reports as a skip; ``check()`` raises it
without injecting anything, so a drill can skip before it builds its topology.

``disk_full`` needs a node created with a size-limited ``pg_wal`` (``limit_wal``, or
``pgdr.primary(wal_limit="96m")``): on the Docker backend a tmpfs volume of that size.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from pytest_pgdr.basics.errors import ConfigError, PgdrError
from pytest_pgdr.cluster.topology import CLOSE_HOOKS
from pytest_pgdr.hosts.base import (
    FREEZE,
    PARTITION,
    WAL_LIMIT,
    FaultUnsupported,
    ServerProcess,
    no_disk_full,
    no_freeze,
    no_partition,
    no_wal_limit,
)
from pytest_pgdr.hosts.files import Files

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology

__all__ = [
    "Fault",
    "FaultUnsupported",
    "archive_failure",
    "crash",
    "disk_full",
    "freeze",
    "heal_all",
    "limit_wal",
    "partition",
]

_ACTIVE: list[Fault] = []


class Fault:
    """A fault injected by :meth:`start` and healed by :meth:`stop` (both idempotent)."""

    what = "fault"

    def __init__(self) -> None:
        self.active = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.what} {'active' if self.active else 'healed'}>"

    def check(self) -> Fault:
        """Raise :class:`FaultUnsupported` if this fault cannot be injected here (no effect)."""
        return self

    def start(self) -> Fault:
        if not self.active:
            self.check()
            self._inject()
            self.active = True
            _ACTIVE.append(self)
        return self

    def stop(self) -> None:
        if self.active:
            self.active = False
            with contextlib.suppress(ValueError):
                _ACTIVE.remove(self)
            self._heal()

    def __enter__(self) -> Fault:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _inject(self) -> None:
        raise NotImplementedError

    def _heal(self) -> None:
        """Nothing to undo by default."""


def heal_all() -> int:
    """Stop every fault still active (newest first); returns how many."""
    healed = 0
    for fault in reversed(list(_ACTIVE)):
        with contextlib.suppress(Exception):
            fault.stop()
            healed += 1
    return healed


if heal_all not in CLOSE_HOOKS:
    CLOSE_HOOKS.append(heal_all)  # a frozen or cut-off server cannot stop


def _running_proc(node: Node, what: str) -> ServerProcess:
    if node.proc is None or node.proc.poll() is not None:
        raise PgdrError(
            f"Cannot {what} {node.name}: it is not running",
            "a fault is injected into a running server",
            f"Start {node.name} first",
        )
    return node.proc


class crash(Fault):  # noqa: N801 - used like a function: with crash(node)
    """SIGKILL the node's server and all its processes at once (a power loss).

    With ``restart``, the node is started again when the fault is healed.
    """

    def __init__(self, node: Node, restart: bool = False) -> None:
        super().__init__()
        self.node = node
        self.restart = restart
        self.what = f"crash of {node.name}"

    def _inject(self) -> None:
        self.node.crash()

    def _heal(self) -> None:
        if self.restart:
            self.node.start()


class freeze(Fault):  # noqa: N801
    """Stop every process of the node (``docker pause``; locally SIGSTOP of the postmaster's
    process group, then of each child's: PostgreSQL's children are process-group leaders of
    their own); they continue (``docker unpause`` / SIGCONT) when healed."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self.what = f"freeze of {node.name}"
        self._proc: ServerProcess | None = None

    def check(self) -> freeze:
        if FREEZE not in self.node.host.capabilities:
            raise no_freeze(self.node.name)
        return self

    def _inject(self) -> None:
        self._proc = _running_proc(self.node, "freeze")
        self.node.host.freeze(self._proc)

    def _heal(self) -> None:
        if self._proc is not None:
            self.node.host.thaw(self._proc)


class partition(Fault):  # noqa: N801
    """Cut the node off the network (its peers and the published client port)."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self.what = f"network partition of {node.name}"
        self._proc: ServerProcess | None = None

    def check(self) -> partition:
        if PARTITION not in self.node.host.capabilities:
            raise no_partition()
        return self

    def _inject(self) -> None:
        self._proc = _running_proc(self.node, "partition")
        self.node.host.disconnect(self._proc)

    def _heal(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.node.host.reconnect(self._proc)


class archive_failure(Fault):  # noqa: N801
    """The archive refuses WAL: its ``wal/`` directory is moved away, and put back on heal.

    ``archive_command`` fails (the server keeps the segments and retries), and so does
    ``restore_command``. Anything written to a new ``wal/`` meanwhile is merged back.
    """

    def __init__(self, topology: Topology) -> None:
        super().__init__()
        self.files: Files = topology.host
        self.wal: Path = topology.archive.wal
        self.aside = self.wal.with_name(f"{self.wal.name}.offline-{os.getpid()}")
        self.what = f"archive failure ({self.wal})"

    def _inject(self) -> None:
        self.files.rename(self.wal, self.aside)

    def _heal(self) -> None:
        kept = set(self.files.names(self.aside))
        for name in self.files.names(self.wal):
            if name not in kept:
                self.files.rename(self.wal / name, self.aside / name)
        self.files.remove_tree(self.wal)
        self.files.rename(self.aside, self.wal)


def limit_wal(node: Node, size: str) -> None:
    """Give ``node`` (not yet started) a ``pg_wal`` on a file system of ``size`` (``96m``), so
    that :class:`disk_full` can fill it. Docker backend only: :class:`FaultUnsupported` here."""
    if WAL_LIMIT not in node.host.capabilities:
        raise no_wal_limit(node.name)
    node.host.limit_wal(node.name, node.datadir, size)


class disk_full(Fault):  # noqa: N801
    """The file system under the node's ``pg_wal`` is full; healing frees the space again.

    On the Docker backend the node's WAL tmpfs (see :func:`limit_wal`) is filled to the last
    byte with a filler file (``docker exec``), and the filler is removed on heal. The server
    itself is not touched: what it does (PANIC at the next WAL segment) is the drill's to see.
    Not injectable on the local backend (:class:`FaultUnsupported`).
    """

    def __init__(self, node: Node, path: str = "pg_wal") -> None:
        super().__init__()
        self.node = node
        self.path = path
        self.what = f"disk full under {node.name}/{path}"
        self.filler_bytes = 0

    def check(self) -> disk_full:
        if WAL_LIMIT not in self.node.host.capabilities:
            raise no_disk_full(self.node.name)
        if self.path != "pg_wal":
            raise ConfigError(
                f"Cannot fill {self.path} of {self.node.name}",
                "only pg_wal can be put on a size-limited file system",
            )
        return self

    def _inject(self) -> None:
        self.filler_bytes = self.node.host.fill_wal(self.node.name)

    def _heal(self) -> None:
        self.node.host.relieve_wal(self.node.name)
