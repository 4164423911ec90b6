"""A three-member etcd cluster: the consensus store Patroni elects in.

Each member runs as the server user through the host, working in its own directory under the
topology (so the run's sweep finds it if the run is killed): locally on loopback ports of its
own, in containers on the private network under its name with etcd's usual ports. Elections
are tuned short (50 ms heartbeats, 500 ms election timeout) so a lost quorum shows at once.
"""

from __future__ import annotations

import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.serverlog import ServerLog
from pytest_pgdr.ha.base import ManagerUnavailable
from pytest_pgdr.ha.patroni_rest import http, networked

if TYPE_CHECKING:
    from pytest_pgdr.hosts.base import Host, ServerProcess

ETCD = "etcd"
TOKEN = "pytest-pgdr"
CLIENT_PORT, PEER_PORT = 2379, 2380  # in a container of its own
POLL = 0.05  # between health requests


def in_dir(workdir: Path, argv: list[str]) -> list[str]:
    """``argv`` run from ``workdir`` (the run's sweep finds processes by working directory)."""
    return ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(workdir), *argv]


def etcd_binary(host: Host) -> str:
    if networked(host):
        return ETCD  # the image's (the images carry etcd-server)
    path = shutil.which(ETCD)
    if path is None:
        raise ManagerUnavailable(
            "etcd is not installed",
            "Patroni keeps its leader lock in etcd; no 'etcd' program is on PATH",
            "Install it (Debian: apt-get install etcd-server etcd-client) or run bash .ci/setup.sh",
        )
    return path


@dataclass
class EtcdMember:
    name: str
    root: Path
    address: str  # how Patroni and the other members reach it
    listen: str  # the address it listens on
    client_port: int
    peer_port: int
    proc: ServerProcess | None = None

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{self.peer_port}"

    @property
    def log(self) -> ServerLog:
        return ServerLog(self.root / "etcd.log")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    """``size`` etcd members on ``host``, under ``root``; :meth:`close` stops them all."""

    def __init__(self, host: Host, root: Path, size: int = 3) -> None:
        self.host = host
        self.binary = etcd_binary(host)
        self.via = host if networked(host) else None  # health asked from inside the network
        self._claimed: list[int] = []
        self.members = [self._member(f"etcd{i}", root) for i in range(1, size + 1)]

    def _member(self, name: str, root: Path) -> EtcdMember:
        home = self.host.make_dir(root / name)
        if self.via is not None:
            return EtcdMember(name, home, name, "0.0.0.0", CLIENT_PORT, PEER_PORT)
        client, peer = self.host.run_dir.claim_port(), self.host.run_dir.claim_port()
        self._claimed += [client, peer]
        address = self.host.client_address
        return EtcdMember(name, home, address, address, client, peer)

    @property
    def endpoints(self) -> list[str]:
        """``host:port`` of every member's client listener (Patroni's ``etcd3.hosts``)."""
        return [f"{m.address}:{m.client_port}" for m in self.members]

    def _argv(self, member: EtcdMember) -> list[str]:
        peers = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            self.binary,
            f"--name={member.name}",
            f"--data-dir={member.root / 'data'}",
            f"--listen-client-urls=http://{member.listen}:{member.client_port}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls=http://{member.listen}:{member.peer_port}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={peers}",
            f"--initial-cluster-token={TOKEN}",
            "--initial-cluster-state=new",
            "--heartbeat-interval=50",
            "--election-timeout=500",
            "--log-outputs=stderr",
        ]

    def start(self, timeout: float | None = None) -> None:
        """Start every member and wait until the cluster has a leader (healthy)."""
        for member in self.members:
            self.start_member(member, wait=False)
        self.wait_healthy(timeout)

    def start_member(self, member: EtcdMember, wait: bool = True) -> None:
        if member.running():
            return
        argv = in_dir(member.root, self._argv(member))
        member.proc = self.host.spawn_server(argv, member.root / "etcd.log")
        if wait:
            self.wait_healthy()

    def stop_member(self, member: EtcdMember) -> None:
        """SIGKILL one member (its process group) and wait for it to exit."""
        if member.proc is not None and member.proc.poll() is None:
            self.host.signal(member.proc, signal.SIGKILL, group=True)
            member.proc.wait()

    def healthy(self, member: EtcdMember) -> bool:
        """Whether ``member`` answers and sees a leader (etcd's own /health)."""
        answer = http(member.client_url + "/health", self.via, timeout=1)
        return isinstance(answer.body, dict) and answer.body.get("health") == "true"

    def has_quorum(self) -> bool:
        return any(self.healthy(m) for m in self.members if m.running())

    def wait_healthy(self, timeout: float | None = None) -> None:
        poll(
            lambda: all(self.healthy(m) for m in self.members if m.running()),
            "etcd to elect a leader (every running member healthy)",
            timeout,
            self.log_tail,
            interval=POLL,
        )

    def wait_no_quorum(self, timeout: float | None = None) -> None:
        poll(
            lambda: not self.has_quorum(),
            "etcd to lose its quorum",
            timeout,
            self.log_tail,
            interval=POLL,
        )

    def log_tail(self) -> list[str]:
        return [f"{m.name}: {line}" for m in self.members for line in m.log.tail(5)]

    def close(self) -> None:
        for member in self.members:
            self.stop_member(member)
        for port in self._claimed:
            self.host.run_dir.release_port(port)
