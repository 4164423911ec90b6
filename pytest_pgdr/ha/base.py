"""The contract every cluster manager meets: who leads, who follows, a planned switchover.

A member (``plain``: the topology's own primary and streaming replicas, promoted by hand;
``patroni``: Patroni nodes electing a leader in etcd) is chosen once by name in
:mod:`pytest_pgdr.ha.registry`. Its nodes are :class:`~pytest_pgdr.cluster.node.Node` objects,
so the writer, the faults and the fingerprints work on them unchanged; drills ask
:attr:`ClusterManager.capabilities` before a verb a member may lack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pytest_pgdr.basics.errors import PgdrError, Unavailable

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node

AUTO_FAILOVER = "auto_failover"  # elects a new leader by itself when the leader goes away
DCS = "dcs"  # keeps its state in a consensus store whose quorum can be lost (etcd)
REJOIN = "rejoin"  # brings a returning old leader back as a replica by itself (pg_rewind)
CAPABILITIES = (AUTO_FAILOVER, DCS, REJOIN)


class ManagerUnavailable(Unavailable):
    """The cluster manager's programs are missing here: a skip, or a failure in strict mode
    with ``pgdr_ha = required``."""

    component = "ha"


class ManagerError(PgdrError):
    """The cluster manager did something other than what its configuration promises."""


class ClusterManager(Protocol):
    """A running cluster of ``members`` nodes, one of them the leader (the writable primary)."""

    name: str
    capabilities: frozenset[str]
    synchronous: bool  # acknowledged commits survive a failover (synchronous replication)

    @property
    def nodes(self) -> list[Node]:
        """Every member's node, in creation order."""

    def describe(self) -> str:
        """The manager and its version, for the report."""

    def start(self, timeout: float | None = None) -> Node:
        """Start every member; return the leader once every replica streams from it."""

    def leader(self, timeout: float | None = None, exclude: Node | None = None) -> Node:
        """Wait until one member (other than ``exclude``) is the leader and accepts
        writes; return it."""

    def wait_replicas(self, leader: Node, timeout: float | None = None) -> list[Node]:
        """Wait until every other running member streams from ``leader``; return them."""

    def switchover(self, candidate: Node | None = None, timeout: float | None = None) -> Node:
        """A planned change of leader (to ``candidate``, else any replica); the new leader."""

    def kill(self, node: Node) -> None:
        """The whole node dies at once (SIGKILL of the manager and the server: a power loss)."""

    def kill_manager(self, node: Node) -> None:
        """SIGKILL the manager alone on ``node``; its server keeps running (FaultUnsupported
        where there is no manager, or no access to the node's host)."""

    def restart(self, node: Node) -> None:
        """Bring a killed or stopped member back (it rejoins as its manager decides)."""

    def close(self) -> None:
        """Stop every process of the cluster; leave nothing behind."""


class DcsControl(Protocol):
    """The consensus store of a manager with :data:`DCS`, for the quorum drills."""

    def lose_quorum(self) -> None:
        """Stop a majority of the store's members; return once no member sees a leader."""

    def restore_quorum(self) -> None:
        """Start every stopped member again; return once the store is healthy."""
