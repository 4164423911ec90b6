"""A three-member etcd cluster on loopback ports: the consensus store Patroni elects in.

Each member runs as the server user, in its own process group, working in its own directory
under the topology (so the run's sweep finds it if the run is killed). Elections are tuned
short (50 ms heartbeats, 500 ms election timeout) so a lost quorum shows within a second.
"""

from __future__ import annotations

import json
import shutil
import signal
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.serverlog import ServerLog
from pytest_pgdr.ha.base import ManagerUnavailable

if TYPE_CHECKING:
    from pytest_pgdr.hosts.base import Host, ServerProcess

ETCD = "etcd"
TOKEN = "pytest-pgdr"
POLL = 0.05  # between health requests


def in_dir(workdir: Path, argv: list[str]) -> list[str]:
    """``argv`` run from ``workdir`` (the run's sweep finds processes by working directory)."""
    return ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(workdir), *argv]


def etcd_binary() -> str:
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
    client_port: int
    peer_port: int
    proc: ServerProcess | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def log(self) -> ServerLog:
        return ServerLog(self.root / "etcd.log")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    """``size`` etcd members on ``host``, under ``root``; :meth:`close` stops them all."""

    def __init__(self, host: Host, root: Path, size: int = 3) -> None:
        self.host = host
        self.binary = etcd_binary()
        self.members = [
            EtcdMember(
                f"etcd{i}",
                host.make_dir(root / f"etcd{i}"),
                host.run_dir.claim_port(),
                host.run_dir.claim_port(),
            )
            for i in range(1, size + 1)
        ]

    @property
    def endpoints(self) -> list[str]:
        """``host:port`` of every member's client listener (Patroni's ``etcd3.hosts``)."""
        return [f"127.0.0.1:{m.client_port}" for m in self.members]

    def _argv(self, member: EtcdMember) -> list[str]:
        peers = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        return [
            self.binary,
            f"--name={member.name}",
            f"--data-dir={member.root / 'data'}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
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
        try:
            with urllib.request.urlopen(member.client_url + "/health", timeout=1) as resp:
                return bool(json.load(resp).get("health") == "true")
        except (OSError, ValueError, urllib.error.URLError):
            return False

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
            self.host.run_dir.release_port(member.client_port)
            self.host.run_dir.release_port(member.peer_port)
