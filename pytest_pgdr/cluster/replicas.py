"""Streaming replicas of a topology: creating, re-pointing, rewinding, promoting, waiting."""

from __future__ import annotations

from collections.abc import Mapping

from pytest_pgdr.basics.errors import RecoveryError
from pytest_pgdr.cluster.archive import Backup
from pytest_pgdr.cluster.backups import Backups
from pytest_pgdr.cluster.credentials import REPLICATION_USER
from pytest_pgdr.cluster.lsn import Lsn
from pytest_pgdr.cluster.node import Node


class Replicas(Backups):
    """Standbys that stream from an upstream node."""

    def replica(
        self,
        upstream: Node,
        name: str | None = None,
        backup: Backup | None = None,
        sync: bool = False,
        slot: bool = True,
        delay: str | None = None,
        settings: Mapping[str, object] | None = None,
        start: bool = True,
    ) -> Node:
        """A streaming replica of ``upstream``: from ``backup`` or a fresh ``pg_basebackup``."""
        node = self._new_node(self._name("replica", name))
        slot_name = f"slot_{node.name}" if slot else None
        if backup is None:
            node.datadir.rmdir() if node.datadir.exists() else None
            args = [
                "-D",
                str(node.datadir),
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-manifest",
                "-U",
                REPLICATION_USER,
                *self._sync_args(),
            ]
            if slot_name:
                args += ["-C", "-S", slot_name]
            upstream.run_tool("pg_basebackup", *args)
        else:
            self._materialize(backup, node)
            if slot_name:
                upstream.scalar("SELECT pg_create_physical_replication_slot(%s)", [slot_name])
        self._point_at(node, upstream, slot_name)
        if delay:
            node.conf["recovery_min_apply_delay"] = delay
        node.conf.update(settings or {})
        if sync:
            self._make_synchronous(upstream, node)
        if start:
            node.start()
        return node

    def _point_at(self, node: Node, upstream: Node, slot_name: str | None) -> None:
        if self._archive is not None:
            node.conf.update(self.archive_settings())
        node.conf.update(
            {
                "primary_conninfo": (
                    f"{upstream.peer_conninfo(user=REPLICATION_USER)}"
                    f" passfile={self.credentials.passfile} application_name={node.name}"
                ),
                "recovery_target_timeline": "latest",
            }
        )
        if slot_name:
            node.conf["primary_slot_name"] = slot_name
        node.signal_file("standby")
        node.signal_file("recovery", present=False)
        node.write_conf()

    def _make_synchronous(self, upstream: Node, node: Node) -> None:
        names = [n for n in str(upstream.conf.get("synchronous_standby_names", "")).split(",") if n]
        names = [n.strip() for n in names if n.strip() != node.name] + [node.name]
        upstream.conf["synchronous_standby_names"] = ",".join(names)
        if upstream.is_running():
            upstream.reload()

    def follow(self, node: Node, new_upstream: Node) -> None:
        """Point a standby at another upstream (after a failover) and restart it."""
        slot_name = f"slot_{node.name}"
        if not new_upstream.query(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [slot_name]
        ):
            new_upstream.scalar("SELECT pg_create_physical_replication_slot(%s)", [slot_name])
        self._point_at(node, new_upstream, slot_name)
        node.restart()

    def rewind(self, old: Node, new: Node) -> str:
        """Rejoin a failed primary as a standby of ``new`` with ``pg_rewind``; its output.

        ``old`` must be down (stopped cleanly or crashed: pg_rewind then runs crash recovery
        first). Whatever ``old`` wrote after the timelines split is thrown away.
        """
        if old.is_running():
            raise RecoveryError(
                f"pg_rewind of {old.name} needs it stopped",
                "pg_rewind rewrites the data directory of a server that is down",
                "Call old.stop() (or old.crash()) first",
            )
        new.scalar("CHECKPOINT")  # pg_rewind reads the source's timeline from pg_control
        source = f"{new.peer_conninfo()} passfile={self.credentials.passfile}"
        proc = old.run_tool(
            "pg_rewind",
            f"--target-pgdata={old.datadir}",
            f"--source-server={source}",
            *self._sync_args(),
        )
        slot_name = f"slot_{old.name}"
        if not new.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [slot_name]):
            new.scalar("SELECT pg_create_physical_replication_slot(%s)", [slot_name])
        self._point_at(old, new, slot_name)
        old.start()
        return proc.stdout + proc.stderr

    def promote(self, node: Node, wait: bool = True, timeout: float | None = None) -> None:
        """Promote a standby (``pg_promote``); with ``wait``, until it accepts writes."""
        node.scalar("SELECT pg_promote(wait => false)")
        if wait:
            self.wait_promoted(node, timeout)

    def wait_promoted(self, node: Node, timeout: float | None = None) -> None:
        node.poll_query(
            "SELECT NOT pg_is_in_recovery()", f"{node.name} to finish promotion", timeout
        )

    def wait_replayed(self, node: Node, lsn: Lsn, timeout: float | None = None) -> None:
        node.poll_query(
            f"SELECT '{lsn}'::pg_lsn <= pg_last_wal_replay_lsn()",
            f"{node.name} to replay up to {lsn}",
            timeout,
        )

    def wait_caught_up(
        self, upstream: Node, replica: Node, lsn: Lsn | None = None, timeout: float | None = None
    ) -> Lsn:
        """Wait until ``upstream`` sees ``replica`` streaming and replayed up to ``lsn``."""
        lsn = lsn or upstream.lsn("write" if not upstream.in_recovery() else "replay")
        self.wait_replayed(replica, lsn, timeout)
        upstream.poll_query(
            f"SELECT '{lsn}'::pg_lsn <= replay_lsn AND state = 'streaming' FROM"
            f" pg_stat_replication WHERE application_name = '{replica.name}'",
            f"{replica.name} to catch up with {upstream.name} at {lsn}",
            timeout,
        )
        return lsn
