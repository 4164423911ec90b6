"""The plain member: the topology's own primary and streaming replicas, no manager at all.

Nothing elects a leader when the primary dies (no :data:`~pytest_pgdr.ha.base.AUTO_FAILOVER`);
a planned switchover is done the way a runbook does it by hand: stop the primary cleanly,
promote a caught-up replica, rewind the old primary and point every other replica at the new.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_pgdr.basics.wait import poll
from pytest_pgdr.hosts.base import FaultUnsupported

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology
    from pytest_pgdr.ha.patroni_config import PatroniOptions

PLAIN = "plain"


class Plain:
    """A primary and ``members - 1`` streaming replicas (the first synchronous if asked)."""

    name = PLAIN
    capabilities: frozenset[str] = frozenset()

    def __init__(
        self, topology: Topology, members: int = 3, options: PatroniOptions | None = None
    ) -> None:
        self.topology = topology
        self.members = members
        self.synchronous = bool(options and options.synchronous_mode)
        self._nodes: list[Node] = []

    @property
    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def describe(self) -> str:
        sync = "synchronous" if self.synchronous else "asynchronous"
        return f"plain PostgreSQL streaming replication ({sync}, failover by hand)"

    def start(self, timeout: float | None = None) -> Node:
        primary = self.topology.primary(name="plain1", archive=False)
        self._nodes = [primary]
        for i in range(2, self.members + 1):
            sync = self.synchronous and i == 2
            self._nodes.append(self.topology.replica(primary, name=f"plain{i}", sync=sync))
        self.wait_replicas(primary, timeout)
        return primary

    def leader(self, timeout: float | None = None, exclude: Node | None = None) -> Node:
        def found() -> Node | None:
            for node in self._nodes:
                if node is exclude or not node.is_running():
                    continue
                if node.try_scalar("SELECT pg_is_in_recovery()") is False:
                    return node
            return None

        return poll(found, "a writable primary", timeout, interval=0.05)

    def wait_replicas(self, leader: Node, timeout: float | None = None) -> list[Node]:
        others = [n for n in self._nodes if n is not leader and n.is_running()]
        for node in others:
            self.topology.wait_caught_up(leader, node, timeout=timeout)
        return others

    def switchover(self, candidate: Node | None = None, timeout: float | None = None) -> Node:
        old = self.leader(timeout)
        new = candidate or next(n for n in self._nodes if n is not old and n.is_running())
        old.stop()
        self.topology.wait_caught_up(old, new) if old.is_running() else None
        self.topology.promote(new, timeout=timeout)
        self.topology.rewind(old, new)
        for node in self._nodes:
            if node not in (old, new) and node.is_running():
                self.topology.follow(node, new)
        return new

    def kill(self, node: Node) -> None:
        node.crash()

    def kill_manager(self, node: Node) -> None:
        raise FaultUnsupported(
            "The plain cluster has no manager to kill",
            "its servers run on their own; failover is done by hand",
            "Use the patroni cluster manager for this drill",
        )

    def restart(self, node: Node) -> None:
        node.start()

    def close(self) -> None:
        """The topology stops these nodes."""
