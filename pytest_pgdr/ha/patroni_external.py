"""A Patroni cluster that already runs elsewhere (a team's staging cluster), given by the REST
URLs of its members and a libpq DSN (``--pgdr-patroni-url``, ``--pgdr-patroni-dsn``).

Its members are :class:`~pytest_pgdr.cluster.node.Node` objects whose host is this machine for
the client programs, but reaches the member's own address; it has no fault capability, so the
drills that kill, freeze or cut off a node are skipped with that reason, while a switchover
(REST), the client's outage and the lost commits still run.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from psycopg.conninfo import conninfo_to_dict

from pytest_pgdr.basics.errors import ConfigError, register_secret
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.credentials import Credentials, Secret
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.ha.base import AUTO_FAILOVER, ManagerError
from pytest_pgdr.ha.patroni import POLL, STREAMING_SQL, _scalar
from pytest_pgdr.ha.patroni_procs import NodeHost
from pytest_pgdr.ha.patroni_rest import RestApi
from pytest_pgdr.hosts.base import FaultUnsupported

if TYPE_CHECKING:
    from pytest_pgdr.cluster.topology import Topology
    from pytest_pgdr.hosts.base import Host, ServerProcess

NO_HOST = (
    "the cluster was given by --pgdr-patroni-url: pytest-pgdr reaches its members over the"
    " network only and cannot signal their processes"
)


def no_host_access(what: str) -> FaultUnsupported:
    return FaultUnsupported(
        f"{what} needs access to the member's host",
        NO_HOST,
        "Run this drill against a cluster the harness starts (without --pgdr-patroni-url)",
    )


class RemoteHost(NodeHost):
    """This machine for files and client programs; the member's address for connections."""

    def __init__(self, real: Host, datadir: Any, address: str) -> None:
        super().__init__(real, datadir)
        self.client_address = address
        self.capabilities = frozenset()

    def kill_group(self, proc: ServerProcess) -> None:
        raise no_host_access("Killing a node")

    def freeze(self, proc: ServerProcess) -> None:
        raise no_host_access("Freezing a node")

    def close(self) -> None:
        """Nothing of this machine's to clean up."""


class RemoteNode(Node):
    """A member elsewhere: no process of this machine's to watch, so it counts as running
    (a connection says whether it answers)."""

    def is_running(self) -> bool:
        return True

    def crash(self) -> None:
        raise no_host_access("Killing a node")


def _rest_api(url: str) -> RestApi:
    """``http://user:password@host:8008`` -> the API at ``http://host:8008`` with that login."""
    parts = urllib.parse.urlsplit(url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Bad Patroni REST URL {url!r}", "it must look like http://host:8008", "")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    password = Secret(urllib.parse.unquote(parts.password or ""))
    register_secret(password)
    plain = urllib.parse.urlunsplit((parts.scheme, netloc, "", "", ""))
    return RestApi(plain, urllib.parse.unquote(parts.username or ""), password)


class ExternalPatroni:
    """A running Patroni cluster reached through ``urls`` (its members' REST APIs) and ``dsn``."""

    name = "patroni"
    capabilities = frozenset({AUTO_FAILOVER})

    def __init__(self, topology: Topology, urls: list[str], dsn: str) -> None:
        self.topology = topology
        self.apis = [_rest_api(u) for u in urls]
        params = conninfo_to_dict(dsn)
        password = Secret(str(params.get("password") or ""))
        register_secret(password)
        user = str(params.get("user") or "postgres")
        passfile = topology.root / "external.pgpass"
        topology.host.write_file(passfile, Secret(f"*:*:*:{user}:{password}\n"))
        self.credentials = Credentials(password, Secret(""), passfile, superuser=user)
        self.synchronous = False
        self._nodes: list[tuple[Node, RestApi]] = []

    def start(self, timeout: float | None = None) -> Node:
        """Read the members from ``GET /cluster``; return the leader."""
        cluster = poll(self._cluster, "a Patroni REST API to answer GET /cluster", timeout)
        config = next((a.get("/config") for a in self.apis if a.get("/config").status == 200), None)
        self.synchronous = bool(
            config and isinstance(config.body, dict) and config.body.get("synchronous_mode")
        )
        self._nodes = [self._member(m) for m in cluster.get("members", [])]
        if not self._nodes:
            raise ManagerError("The Patroni cluster lists no members", f"GET /cluster: {cluster}")
        return self.leader(timeout)

    def _cluster(self) -> dict[str, Any] | None:
        for api in self.apis:
            answer = api.get("/cluster")
            if answer.status == 200 and isinstance(answer.body, dict):
                return answer.body
        return None

    def _member(self, member: dict[str, Any]) -> tuple[Node, RestApi]:
        name, address, port = str(member["name"]), str(member["host"]), int(member["port"])
        root = self.topology.host.make_dir(self.topology.root / f"external_{name}")
        host = RemoteHost(self.topology.host, root / "data", address)
        node = RemoteNode(name, self.topology.inst, host, root, port, self.credentials)
        base = str(member.get("api_url", "")).rsplit("/patroni", 1)[0]
        given = next((a for a in self.apis if a.url == base), None)
        return node, given or RestApi(base, *self._login())

    def _login(self) -> tuple[str, Secret]:
        return (self.apis[0].user, self.apis[0].password) if self.apis else ("", Secret(""))

    @property
    def nodes(self) -> list[Node]:
        return [n for n, _ in self._nodes]

    def describe(self) -> str:
        return f"an existing Patroni cluster ({len(self._nodes)} members, {self.apis[0].url}...)"

    def _api(self, node: Node) -> RestApi:
        return next(api for n, api in self._nodes if n is node)

    def leader(self, timeout: float | None = None, exclude: Node | None = None) -> Node:
        def found() -> Node | None:
            for node, api in self._nodes:
                if node is exclude or api.get("/primary").status != 200:
                    continue
                if node.try_scalar("SELECT NOT pg_is_in_recovery()") is True:
                    return node
            return None

        return poll(found, "the existing cluster's leader to accept writes", timeout, interval=POLL)

    def wait_replicas(self, leader: Node, timeout: float | None = None) -> list[Node]:
        others = [
            n for n, api in self._nodes if n is not leader and api.get("/health").status == 200
        ]
        names = [n.name for n in others]

        def streaming() -> bool:
            if any(self._api(n).get("/replica").status != 200 for n in others):
                return False
            return bool(_scalar(leader, STREAMING_SQL, [names]) == len(others))

        poll(streaming, f"{', '.join(names)} to stream from {leader.name}", timeout, interval=POLL)
        return others

    def switchover(self, candidate: Node | None = None, timeout: float | None = None) -> Node:
        leader = self.leader(timeout)
        body = {"leader": leader.name, **({"candidate": candidate.name} if candidate else {})}
        answer = self._api(leader).post("/switchover", body)
        if answer.status != 200:
            raise ManagerError(
                f"The existing Patroni cluster refused the switchover (HTTP {answer.status})",
                f"it answered: {answer.body}",
                "Give the REST API's login in the URL (http://user:password@host:8008)",
            )
        return self.leader(timeout, exclude=leader)

    def kill(self, node: Node) -> None:
        raise no_host_access("Killing a node")

    def kill_manager(self, node: Node) -> None:
        raise no_host_access("Killing Patroni on a node")

    def restart(self, node: Node) -> None:
        raise no_host_access("Restarting a node")

    def close(self) -> None:
        for node in self.nodes:
            node.close_connections()
