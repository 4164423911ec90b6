"""The Patroni member: three Patroni nodes electing their leader in a three-member etcd.

Locally everything listens on loopback ports of its own; on a host of containers each etcd
member and each node is a container on the topology's private network, reached by name on the
usual ports (the REST API asked from inside that network). Every process runs as the server
user from a directory under the topology, and :meth:`Patroni.close` kills them all (each node
whole: Patroni and its PostgreSQL). Waits poll the REST API (``GET /primary``, ``/replica``)
and the servers.
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_pgdr.basics.errors import register_secret
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.credentials import Secret
from pytest_pgdr.ha.base import (
    AUTO_FAILOVER,
    DCS,
    REJOIN,
    ManagerError,
    ManagerUnavailable,
)
from pytest_pgdr.ha.etcd import EtcdCluster
from pytest_pgdr.ha.patroni_config import REST_USER, PatroniOptions, config_path, node_config
from pytest_pgdr.ha.patroni_node import PatroniNode
from pytest_pgdr.ha.patroni_rest import RestApi, networked

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology

PATRONI = "patroni"
REST_PORT = 8008  # in a container of its own
POLL = 0.05  # between REST requests
STREAMING_SQL = (
    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    " AND application_name = ANY(%s)"
)


def patroni_binary() -> str:
    path = shutil.which(PATRONI)
    if path is None:
        raise ManagerUnavailable(
            "Patroni is not installed",
            "the Patroni cluster manager needs the 'patroni' program on PATH",
            "Install it (Debian: apt-get install patroni) or run bash .ci/setup.sh",
        )
    return path


class Patroni:
    """A Patroni cluster of ``members`` nodes on ``topology``'s host and installation."""

    name = PATRONI
    capabilities = frozenset({AUTO_FAILOVER, DCS, REJOIN})

    def __init__(
        self, topology: Topology, members: int = 3, options: PatroniOptions | None = None
    ) -> None:
        self.binary = PATRONI if networked(topology.host) else patroni_binary()
        self.topology = topology
        options = options or PatroniOptions()
        if options.synchronous_node_count is None:
            options = replace(options, synchronous_node_count=max(members - 1, 1))
        self.options = options
        self.synchronous = self.options.synchronous_mode
        self.scope = f"pgdr{secrets.token_hex(4)}"
        self.etcd = EtcdCluster(topology.host, topology.root / "etcd")
        self.rest_password = Secret(secrets.token_urlsafe(18))
        register_secret(self.rest_password)
        self._ports: list[int] = []
        self._version: str | None = None
        self._nodes = [self._new_node(f"patroni{i}") for i in range(1, members + 1)]
        self.bootstrap_seconds: float | None = None

    def _new_node(self, name: str) -> PatroniNode:
        topo, host = self.topology, self.topology.host
        root = host.make_dir(topo.root / name)
        host.make_dir(root / "sock")
        if networked(host):  # a container of its own: the usual port, reached by name
            rest = (f"0.0.0.0:{REST_PORT}", f"{host.peer_address(name)}:{REST_PORT}")
            api = RestApi(f"http://{rest[1]}", REST_USER, self.rest_password, via=host)
        else:
            rest_port = host.run_dir.claim_port()
            self._ports.append(rest_port)
            rest = (f"{host.client_address}:{rest_port}",) * 2
            api = RestApi(f"http://{rest[1]}", REST_USER, self.rest_password)
        node = PatroniNode(
            name,
            topo.inst,
            host,
            root,
            host.run_dir.claim_port(),
            topo.credentials,
            api,
            self.binary,
        )
        self._ports.append(node.port)
        text = node_config(
            self.scope,
            node,
            rest,
            self.etcd.endpoints,
            self.options,
            topo.common_settings(),
            self.rest_password,
        )
        host.write_file(config_path(node), text)
        return node

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes)

    @property
    def patroni_nodes(self) -> list[PatroniNode]:
        return list(self._nodes)

    def describe(self) -> str:
        sync = "synchronous" if self.synchronous else "asynchronous"
        safe = ", failsafe" if self.options.failsafe_mode else ""
        if self._version is None:
            out = self.topology.host.run([self.binary, "--version"], timeout=60).stdout
            self._version = out.strip().removeprefix("patroni ") or "unknown"
        version = self._version
        return (
            f"Patroni {version} ({sync}{safe}, ttl {self.options.ttl} s)"
            f" + etcd x{len(self.etcd.members)}"
        )

    # lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> Node:
        """Start etcd and every node; return the leader once every replica streams from it."""
        started = time.monotonic()
        self.etcd.start(timeout)
        for node in self._nodes:
            node.start(wait=False)
        leader = self.leader(timeout)
        self.wait_replicas(leader, timeout)
        self.bootstrap_seconds = time.monotonic() - started
        return leader

    def close(self) -> None:
        """Kill every node whole, then etcd; release the ports."""
        for node in self._nodes:
            node.crash()
            node.node_host.close()
        self.etcd.close()
        for port in self._ports:
            self.topology.host.run_dir.release_port(port)

    # the consensus store -----------------------------------------------------------------
    def lose_quorum(self) -> None:
        """SIGKILL a majority of the etcd members; return once none sees a leader."""
        for member in self.etcd.members[: len(self.etcd.members) // 2 + 1]:
            self.etcd.stop_member(member)
        self.etcd.wait_no_quorum()

    def restore_quorum(self) -> None:
        for member in self.etcd.members:
            self.etcd.start_member(member, wait=False)
        self.etcd.wait_healthy()

    # roles ------------------------------------------------------------------------------
    def _is_leader(self, node: PatroniNode) -> bool:
        if not node.manager_running() or node.rest.get("/primary").status != 200:
            return False
        return node.try_scalar("SELECT NOT pg_is_in_recovery()") is True

    def leader(self, timeout: float | None = None, exclude: Node | None = None) -> Node:
        def found() -> PatroniNode | None:
            for node in self._nodes:
                if node is not exclude and self._is_leader(node):
                    return node
            return None

        return poll(found, "a Patroni leader that accepts writes", timeout, self.log_tail, POLL)

    def wait_replicas(self, leader: Node, timeout: float | None = None) -> list[Node]:
        others = [n for n in self._nodes if n is not leader and n.manager_running()]
        names = [n.name for n in others]

        def streaming() -> bool:
            if any(n.rest.get("/replica").status != 200 for n in others):
                return False
            if _scalar(leader, STREAMING_SQL, [names]) != len(others):
                return False
            return not self.synchronous or self._sync_settled(leader, len(others))

        what = f"{', '.join(names)} to stream from {leader.name}"
        poll(
            streaming,
            what + (" (synchronously, as Patroni's sync key says)" if self.synchronous else ""),
            timeout,
            self.log_tail,
            POLL,
        )
        return list(others)

    def _sync_settled(self, leader: Node, replicas: int) -> bool:
        """The leader waits for as many standbys as configured, and the ones Patroni may
        promote (its sync key, ``sync_standby`` in ``GET /cluster``) are among them."""
        wanted = min(self.options.synchronous_node_count or 1, replicas)
        members = self.cluster().get("members", [])
        named = {
            m["name"] for m in members if isinstance(m, dict) and m.get("role") == "sync_standby"
        }
        rows = _rows(
            leader, "SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'"
        )
        synced = {r[0] for r in rows}
        return len(synced) >= wanted and bool(named) and named <= synced

    def switchover(self, candidate: Node | None = None, timeout: float | None = None) -> Node:
        """``POST /switchover`` to the leader; the new leader, once it accepts writes."""
        leader = self.leader(timeout)
        body = {"leader": leader.name}
        if candidate is not None:
            body["candidate"] = candidate.name
        answer = self._rest(leader).post("/switchover", body)
        if answer.status != 200:
            raise ManagerError(
                f"Patroni refused the switchover away from {leader.name} (HTTP {answer.status})",
                f"it answered: {answer.body}",
                "Check that a healthy replica exists (GET /cluster)",
                log_lines=self.log_tail(),
            )
        return self.leader(timeout, exclude=leader)

    def kill(self, node: Node) -> None:
        node.crash()

    def kill_manager(self, node: Node) -> None:
        """SIGKILL Patroni alone on ``node`` (its PostgreSQL keeps running)."""
        self._own(node).kill_manager()

    def restart(self, node: Node) -> None:
        node.start()

    def cluster(self) -> dict[str, Any]:
        """``GET /cluster`` from the first node that answers."""
        for node in self._nodes:
            answer = node.rest.get("/cluster")
            if answer.status == 200 and isinstance(answer.body, dict):
                return answer.body
        return {}

    # helpers ----------------------------------------------------------------------------
    def _own(self, node: Node) -> PatroniNode:
        for mine in self._nodes:
            if mine is node:
                return mine
        raise ManagerError(f"{node.name} is not a node of this Patroni cluster")

    def _rest(self, node: Node) -> RestApi:
        return self._own(node).rest

    def log_tail(self) -> list[str]:
        lines = [f"{n.name}: {line}" for n in self._nodes for line in n.log.tail(6)]
        return lines + self.etcd.log_tail()


def _rows(node: Node, sql: str) -> list[tuple[Any, ...]]:
    try:
        return node.query(sql)
    except psycopg.Error:
        return []


def _scalar(node: Node, sql: str, params: list[Any] | None = None) -> Any:
    """``node.scalar``, or None while the server cannot answer."""
    try:
        return node.scalar(sql, params)
    except psycopg.Error:
        return None
