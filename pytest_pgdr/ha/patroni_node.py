"""One Patroni-managed PostgreSQL server, as a :class:`~pytest_pgdr.cluster.node.Node`.

Patroni starts, stops, promotes and rewinds the server; the node only starts and stops
Patroni. ``crash()`` kills the whole node (Patroni and PostgreSQL, through
:class:`~pytest_pgdr.ha.patroni_procs.NodeHost`); :meth:`PatroniNode.kill_manager` kills
Patroni alone, which leaves its PostgreSQL running. ``is_running()`` is about PostgreSQL.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.basics.errors import ServerStartError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.cluster.serverlog import ServerLog
from pytest_pgdr.ha.base import ManagerError
from pytest_pgdr.ha.etcd import in_dir
from pytest_pgdr.ha.patroni_config import config_path
from pytest_pgdr.ha.patroni_procs import NodeHost, postmaster_pid
from pytest_pgdr.ha.patroni_rest import networked
from pytest_pgdr.hosts.base import FaultUnsupported

if TYPE_CHECKING:
    from pytest_pgdr.cluster.credentials import Credentials
    from pytest_pgdr.ha.patroni_rest import RestApi
    from pytest_pgdr.hosts.base import Host
    from pytest_pgdr.hosts.install import Installation


class PatroniNode(Node):
    """A member of a Patroni cluster; :attr:`rest` is its REST API."""

    def __init__(
        self,
        name: str,
        inst: Installation,
        host: Host,
        root: Path,
        port: int,
        credentials: Credentials,
        rest: RestApi,
        binary: str,
    ) -> None:
        self.node_host = NodeHost(host, root / "data")
        super().__init__(name, inst, self.node_host, root, port, credentials)
        self.contained = networked(host)  # Patroni is PID 1 of a container of its own
        self.rest = rest
        self.binary = binary
        self.log = ServerLog(root / "patroni.log")  # Patroni's lines and PostgreSQL's

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        patroni = "patroni up" if self.manager_running() else "patroni down"
        return f"<PatroniNode {self.name} pg{self.inst.major} port={self.port} {state}, {patroni}>"

    def write_conf(self) -> None:
        raise ManagerError(
            f"Cannot write the settings of {self.name} directly",
            "Patroni writes this node's postgresql.conf and would overwrite them",
            "Change cluster settings through Patroni's configuration (PatroniOptions)",
        )

    # processes --------------------------------------------------------------------------
    def is_running(self) -> bool:
        """Whether this node's PostgreSQL runs (whatever became of Patroni); in a container,
        whether the container runs and holds a postmaster.pid."""
        if self.contained:
            return self.manager_running() and (self.datadir / "postmaster.pid").exists()
        return postmaster_pid(self.datadir) is not None

    def manager_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait: bool = True, timeout: float | None = None) -> None:
        """Start Patroni (it starts PostgreSQL); with ``wait``, until its REST API reports
        PostgreSQL running (``GET /health``)."""
        if self.manager_running():
            return
        offset = self.log.offset()
        argv = in_dir(self.root, [self.binary, str(config_path(self))])
        self.proc = self.host.spawn_server(argv, self.log.path, host_port=self.port)
        if wait:
            poll(
                lambda: self._healthy(offset),
                f"Patroni on {self.name} to run PostgreSQL (GET /health)",
                timeout,
                lambda: self.log.tail(offset=offset),
                interval=0.05,
            )

    def _healthy(self, offset: int) -> bool:
        if not self.manager_running():
            raise ServerStartError(
                f"Patroni on {self.name} exited while starting (exit code {self.exit_code()})",
                "it refused its configuration, or could not reach etcd or PostgreSQL",
                "Read its log lines below",
                log_lines=self.log.important(offset) or self.log.tail(15, offset),
                log_name=str(self.log.path),
            )
        return self.rest.get("/health").status == 200

    def stop(self, mode: str = "fast", timeout: float | None = None) -> None:
        """Stop Patroni (SIGTERM: it stops PostgreSQL first) and wait until both are gone."""
        self.close_connections()
        if self.manager_running():
            assert self.proc is not None
            proc = self.proc
            self.host.signal(proc, signal.SIGTERM)
            poll(
                lambda: proc.poll() is not None and not self.is_running(),
                f"Patroni and PostgreSQL on {self.name} to stop",
                timeout,
                self.log.tail,
                interval=0.02,
            )
        self.node_host.kill_postmaster()

    def crash(self) -> None:
        """SIGKILL Patroni and PostgreSQL at once (a power loss of the whole node)."""
        self.close_connections()
        if self.proc is not None:
            self.host.kill_group(self.proc)
            self.proc.wait()
        else:
            self.node_host.kill_postmaster()

    def kill_manager(self) -> None:
        """SIGKILL Patroni's process group only: PostgreSQL, in a session of its own, keeps
        running (and, on the leader, accepting writes) until a new Patroni takes it over."""
        if self.contained:
            raise FaultUnsupported(
                f"Killing Patroni alone on {self.name} is not possible in a container",
                "Patroni is the container's first process: the container, PostgreSQL with it,"
                " stops when it dies",
                "Run this drill on the local backend",
            )
        if self.proc is not None:
            self.node_host.real.kill_group(self.proc)
            self.proc.wait()

    def wait_exit(self, what: str, timeout: float | None = None) -> int:
        poll(lambda: not self.is_running(), what, timeout, self.log.tail, interval=0.02)
        return 0
