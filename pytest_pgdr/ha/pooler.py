"""How the application connects: the client-path family (Lab 14 challenges 4-5).

A :class:`ClientPath` gives the libpq connection string a client (the
:class:`~pytest_pgdr.drill.writer.Writer`) uses to reach the primary. Members, chosen by name
in :func:`client_path` and nowhere else:

* ``direct``: the current primary's own address; after a failover the application must be
  told the new one (:meth:`ClientPath.repoint`, like a DNS change);
* ``multihost``: every node in one libpq string with ``target_session_attrs=read-write``:
  libpq tries them in turn and keeps the one that accepts writes (it follows by itself);
* ``pgbouncer``: a pgbouncer in front of the primary; it does not follow a failover: its
  ``[databases]`` entry is rewritten and reloaded by :meth:`~ClientPath.repoint`;
* ``pgpool``: pgpool-II in streaming-replication mode over every node, with health checks,
  read load balancing and its own ``failover_command`` that promotes a standby.

Poolers run as the server user, through the topology's host (like the servers), listen on
the host's private addresses only, and are stopped and reaped by :meth:`ClientPath.close`
(the ``pgdr_client_path`` fixture closes what it made, whatever the outcome).
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from pytest_pgdr.basics.errors import ConfigError, ServerStartError, Unavailable
from pytest_pgdr.basics.wait import poll

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology
    from pytest_pgdr.hosts.base import ServerProcess

# name -> (module under pytest_pgdr.ha, class, program, the Debian package that has it)
MEMBERS: dict[str, tuple[str, str, str | None, str | None]] = {
    "direct": ("multihost", "Direct", None, None),
    "multihost": ("multihost", "MultiHost", None, None),
    "pgbouncer": ("pgbouncer", "PgBouncer", "pgbouncer", "pgbouncer"),
    "pgpool": ("pgpool", "PgPool", "pgpool", "pgpool2"),
}
KINDS = tuple(MEMBERS)
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class PoolerUnavailable(Unavailable):
    """The pooler's program is not installed here: a skip, or a failure in strict mode with
    ``pgdr_ha = required``."""

    component = "ha"


class ClientPath(Protocol):
    """How the application reaches the primary."""

    name: str
    #: whether it finds the new primary after a failover by itself (else: :meth:`repoint`)
    follows_failover: bool
    #: whether it promotes a standby itself when the primary dies (pgpool's failover_command):
    #: a drill then must not promote one too
    promotes: bool

    def conninfo(self, dbname: str = "postgres") -> str:
        """A libpq connection string (the password stays in the pgpass file it names)."""

    def repoint(self, primary: Node) -> None:
        """Send new connections to ``primary`` (after a failover the path did not follow)."""

    def start(self) -> None:
        """Start the pooler (if any) and wait until it accepts connections."""

    def close(self) -> None:
        """Stop the pooler (if any) and reap its processes; safe to call twice."""

    def describe(self) -> str:
        """Its name and version, for the report (``pgbouncer 1.18.0``)."""


def check_kind(kind: str) -> str:
    if kind not in MEMBERS:
        raise ConfigError(
            f"Unknown client path {kind!r}",
            f"valid client paths: {', '.join(KINDS)}",
            "Pick one of them",
        )
    return kind


def find_program(program: str) -> str | None:
    """``program`` on PATH or in the sbin directories Debian installs daemons into."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    return shutil.which(program, path=path)


def require_program(kind: str) -> str:
    """The binary of ``kind``'s pooler; :class:`PoolerUnavailable` naming its package."""
    _, _, program, package = MEMBERS[check_kind(kind)]
    assert program is not None and package is not None
    found = find_program(program)
    if found is None:
        raise PoolerUnavailable(
            f"The {kind} client path needs the program {program}, which is not installed here",
            f"it is not on PATH nor in {', '.join(SBIN)}",
            f"Install the Debian package {package} (apt-get install {package}), as"
            " .ci/setup.sh does",
        )
    return found


def client_path(
    kind: str, topology: Topology, nodes: Sequence[Node], dbnames: Sequence[str] = ("postgres",)
) -> ClientPath:
    """The member ``kind`` in front of ``nodes`` (the primary first, then its standbys) for the
    databases ``dbnames``, started. :class:`PoolerUnavailable` when its program is missing."""
    module, cls, _, _ = MEMBERS[check_kind(kind)]
    if not nodes:
        raise ConfigError(f"The {kind} client path needs at least one node", "none was given")
    factory: Callable[..., ClientPath] = getattr(
        importlib.import_module(f"pytest_pgdr.ha.{module}"), cls
    )
    path = factory(topology, list(nodes), list(dbnames))
    try:
        path.start()
    except BaseException:
        path.close()
        raise
    return path


def backend_address(node: Node) -> tuple[str, int]:
    """Where a pooler running beside the servers reaches ``node``."""
    return node.host.peer_address(node.name), node.host.server_port(node.name, node.port)


def single_line(value: str, what: str) -> str:
    """Refuse a value no config file line can hold (the value itself is never shown)."""
    if any(c in value for c in "\n\r\0"):
        raise ConfigError(
            f"The {what} contains a line break or NUL byte",
            "pooler configuration files hold one setting per line",
            "Use a name without control characters",
        )
    return value


class Daemon:
    """One pooler process of a topology: its directory, port, log, start, wait and reap.

    It runs through the topology's host like a server (as the server user, in its own
    session, working in its directory so a dead run's sweep finds it)."""

    def __init__(self, topology: Topology, name: str) -> None:
        self.topology = topology
        self.host = topology.host
        self.name = name
        self.dir = self.host.make_dir(topology.root / name)
        self.log_path = self.dir / f"{name}.log"
        self.port = self.host.run_dir.claim_port()
        self.proc: ServerProcess | None = None
        self._released = False

    @property
    def listen_port(self) -> int:
        return self.host.server_port(self.name, self.port)

    @property
    def passfile(self) -> Path:
        return self.topology.credentials.client_passfile

    def conninfo(self, dbname: str = "postgres", user: str | None = None) -> str:
        creds = self.topology.credentials
        return make_conninfo(
            host=self.host.client_address,
            port=self.port,
            user=user or creds.superuser,
            dbname=dbname,
            passfile=str(self.passfile),
        )

    def spawn(self, argv: Sequence[str]) -> None:
        script = 'cd "$0" && exec "$@"'
        self.proc = self.host.spawn_server(
            ["/bin/sh", "-c", script, str(self.dir), *argv], self.log_path, host_port=self.port
        )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def wait_ready(self, probe: Callable[[], object], timeout: float | None = None) -> None:
        """Poll ``probe`` (a connection through the pooler) until it succeeds."""

        def ready() -> bool:
            if not self.running():
                code = None if self.proc is None else self.proc.poll()
                raise ServerStartError(
                    f"{self.name} exited while starting (exit code {code})",
                    "it refused its configuration or could not listen",
                    f"Read its log lines below ({self.log_path})",
                    log_lines=self.log_tail(),
                    log_name=f"{self.name} log",
                )
            try:
                probe()
            except psycopg.Error:
                return False
            return True

        poll(ready, f"{self.name} to accept connections", timeout, self.log_tail)

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.conninfo(dbname), autocommit=True, **{"connect_timeout": 5, **kwargs}
        )

    def signal(self, sig: int) -> None:
        if self.proc is not None:
            self.host.signal(self.proc, sig)

    def close(self) -> None:
        """SIGQUIT (immediate shutdown for both poolers), then the host's reap."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                self.host.signal(proc, signal.SIGQUIT)
            self.host.reap(proc)
        if not self._released:
            self._released = True
            self.host.run_dir.release_port(self.port)


__all__ = ["KINDS", "ClientPath", "PoolerUnavailable", "client_path", "require_program"]
