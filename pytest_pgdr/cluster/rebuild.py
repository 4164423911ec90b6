"""Rebuilding a standby in place: the same node (name, port, settings, log) on a new data
directory cloned from its upstream, for a standby whose data directory is lost or that can no
longer catch up (its slot lost the WAL it needed)."""

from __future__ import annotations

from pytest_pgdr.basics.errors import RecoveryError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.credentials import REPLICATION_USER
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.cluster.replicas import Replicas

SLOT_ACTIVE_SQL = "SELECT active FROM pg_replication_slots WHERE slot_name = %s"


class Rebuilds(Replicas):
    """Standbys rebuilt from their upstream with ``pg_basebackup``."""

    def rebuild(self, node: Node, upstream: Node) -> str:
        """Throw ``node``'s data directory away and clone ``upstream`` into its place with a
        new replication slot (the old one, lost or not, is dropped); start it as a streaming
        standby of ``upstream``. ``node`` must be down. Returns the slot's name.

        Wait for it with :meth:`wait_caught_up`.
        """
        if node.is_running():
            raise RecoveryError(
                f"Rebuilding {node.name} needs it stopped",
                "its data directory is replaced by a fresh copy of the upstream",
                f"Call {node.name}.stop() (or .crash()) first",
            )
        slot = f"slot_{node.name}"
        self.drop_slot(upstream, slot)
        self.host.remove_tree(node.datadir)
        upstream.run_tool(
            "pg_basebackup",
            *("-D", str(node.datadir), "-X", "stream", "-c", "fast", "--no-manifest"),
            *("-U", REPLICATION_USER, "-C", "-S", slot),
            *self._sync_args(),
        )
        self._point_at(node, upstream, slot)
        self._stream_from[node.name] = (upstream.name, node.log.offset())
        node.start()
        return slot

    @staticmethod
    def drop_slot(upstream: Node, slot: str) -> None:
        """Drop ``slot`` on ``upstream`` if it exists, once no walsender holds it (a standby
        that just died keeps it active until its walsender notices)."""
        poll(
            lambda: upstream.scalar(SLOT_ACTIVE_SQL, [slot]) is not True,
            f"{upstream.name}'s walsender to release slot {slot}",
        )
        upstream.query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = %s",
            [slot],
        )
