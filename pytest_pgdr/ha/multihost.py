"""Client paths without a pooler: one node's address (``direct``), or every node's in one
libpq string with ``target_session_attrs=read-write`` (``multihost``).

libpq tries the hosts of a multi-host string in order (each within ``connect_timeout``) and
keeps the first that accepts writes: after a promotion it finds the new primary by itself, at
the cost of one failed attempt per dead or read-only host in front of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from psycopg.conninfo import make_conninfo

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology


class Direct:
    """The application holds the primary's own address; :meth:`repoint` gives it another."""

    name = "direct"
    follows_failover = False
    promotes = False

    def __init__(
        self, topology: Topology, nodes: Sequence[Node], dbnames: Sequence[str] = ()
    ) -> None:
        self.passfile = topology.credentials.client_passfile
        self.primary = nodes[0]

    def conninfo(self, dbname: str = "postgres") -> str:
        node = self.primary
        return make_conninfo(node.conninfo(dbname), passfile=str(self.passfile))

    def repoint(self, primary: Node) -> None:
        self.primary = primary

    def start(self) -> None:
        """Nothing to start."""

    def close(self) -> None:
        """Nothing to stop."""

    def describe(self) -> str:
        return f"direct to {self.primary.name}"


class MultiHost:
    """``host=a,b,c port=x,y,z target_session_attrs=read-write``: libpq finds the primary."""

    name = "multihost"
    follows_failover = True
    promotes = False

    def __init__(
        self, topology: Topology, nodes: Sequence[Node], dbnames: Sequence[str] = ()
    ) -> None:
        self.passfile = topology.credentials.client_passfile
        self.user = topology.credentials.superuser
        self.nodes = list(nodes)

    def conninfo(self, dbname: str = "postgres") -> str:
        return multihost_conninfo(self.nodes, dbname, self.user, str(self.passfile))

    def repoint(self, primary: Node) -> None:
        """Only adds ``primary`` when it is not in the list yet: libpq does the rest."""
        if all(n is not primary for n in self.nodes):
            self.nodes.append(primary)

    def start(self) -> None:
        """Nothing to start."""

    def close(self) -> None:
        """Nothing to stop."""

    def describe(self) -> str:
        return f"libpq multi-host over {', '.join(n.name for n in self.nodes)}"


def multihost_conninfo(nodes: Sequence[Node], dbname: str, user: str, passfile: str) -> str:
    """One libpq string naming every node, read-write sessions only."""
    hosts = ",".join(n.host.client_address for n in nodes)
    ports = ",".join(str(n.port) for n in nodes)
    return make_conninfo(
        host=hosts,
        port=ports,
        user=user,
        dbname=dbname,
        passfile=passfile,
        target_session_attrs="read-write",
    )
