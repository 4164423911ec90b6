"""Streaming replicas of a topology: creating, re-pointing, rewinding, promoting, waiting."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pytest_pgdr.basics.errors import RecoveryError, ServerStartError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.archive import Backup
from pytest_pgdr.cluster.backups import Backups
from pytest_pgdr.cluster.credentials import REPLICATION_USER
from pytest_pgdr.cluster.lsn import Lsn, history_parent
from pytest_pgdr.cluster.node import Node

# What a standby's WAL receiver (or startup process) says when it can never stream from its
# upstream: retrying cannot help, so the waits fail at once with these words.
STREAM_REFUSED = {
    "database system identifier differs": (
        "the standby's data directory comes from another cluster (a backup of another primary,"
        " or a restore that has its own identifier): no WAL of this upstream applies to it",
        "Build the replica from a backup of this upstream (pgdr.replica(upstream) takes a"
        " fresh one), or point it at the cluster its backup came from",
    ),
    "is not a child of this server's history": (
        "the standby went past the point where the upstream's timeline branched off",
        "Rewind it (pgdr.rewind) or rebuild it from a fresh backup of the upstream",
    ),
    "does not contain minimum recovery point": (
        "the standby already replayed WAL beyond the point where the new timeline branched"
        " off (it was ahead of the standby that was promoted)",
        "Promote the most advanced standby, or rewind this one (pgdr.rewind) before it follows",
    ),
}
STREAM_REFUSED_RX = re.compile("|".join(re.escape(k) for k in STREAM_REFUSED))


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
        node.conf.update(self.inherited(upstream))
        slot_name = f"slot_{node.name}" if slot else None
        if backup is None:
            self.host.remove_tree(node.datadir)
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
                *self._tablespace_args(upstream, node.root / "tablespaces"),
            ]
            if slot_name:
                args += ["-C", "-S", slot_name]
            upstream.run_tool("pg_basebackup", *args)
        else:
            self.materialize(backup, node)
            if slot_name:
                upstream.scalar("SELECT pg_create_physical_replication_slot(%s)", [slot_name])
        self._point_at(node, upstream, slot_name)
        if delay:
            node.conf["recovery_min_apply_delay"] = delay
        node.conf.update(settings or {})
        if sync:
            self._make_synchronous(upstream, node)
        self._stream_from[node.name] = (upstream.name, node.log.offset())
        if start:
            node.start()
        return node

    def check_streaming(self, node: Node) -> None:
        """Raise at once if ``node``'s log says it can never stream from its upstream (a
        different system identifier, a timeline it cannot follow)."""
        upstream, offset = self._stream_from.get(node.name, ("its upstream", 0))
        lines = node.log.lines(offset)
        for i, line in enumerate(lines):
            match = STREAM_REFUSED_RX.search(line)
            if match is None:
                continue
            why, do = STREAM_REFUSED[match.group(0)]
            shown = [line, *[x for x in lines[i + 1 : i + 3] if "DETAIL:" in x or "HINT:" in x]]
            raise RecoveryError(
                f"{node.name} cannot stream from {upstream}: {match.group(0)}",
                why,
                do,
                log_lines=shown,
                log_name=str(node.log.path),
            )

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
        self._refuse_follower_ahead(node, new_upstream)
        self._point_at(node, new_upstream, slot_name)
        self._stream_from[node.name] = (new_upstream.name, node.log.offset())
        try:
            node.restart()
        except ServerStartError:
            self.check_streaming(node)  # says why, when it is one of the known reasons
            raise

    def _refuse_follower_ahead(self, node: Node, new: Node) -> None:
        """A standby that replayed past the point where ``new``'s timeline branched off cannot
        follow it: PostgreSQL refuses to start it or, after an unclean stop, streams the new
        timeline on top of WAL the new primary never had. Say so before touching it."""
        if not node.is_running() or node.try_scalar("SELECT pg_is_in_recovery()") is not True:
            return
        tli = new.timeline()
        text = new.try_scalar(f"SELECT pg_read_file('pg_wal/{tli:08X}.history')")
        branch = history_parent(str(text)) if tli > 1 and text else None
        replayed = node.try_scalar("SELECT pg_last_wal_replay_lsn()")
        if branch is None or replayed is None:
            return
        parent, switch = branch
        if Lsn.parse(str(replayed)) <= switch or node.timeline() != parent:
            return
        raise RecoveryError(
            f"{node.name} cannot follow {new.name}: it is ahead of the new timeline",
            f"it replayed WAL of timeline {parent} up to {replayed}, past {switch} where"
            f" timeline {tli} of {new.name} branched off (PostgreSQL refuses such a standby:"
            " requested timeline does not contain minimum recovery point)",
            "Promote the most advanced standby, or rewind this one (pgdr.rewind) before it follows",
        )

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
        self._stream_from[old.name] = (new.name, old.log.offset())
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
        self._poll_sql(
            node,
            f"SELECT '{lsn}'::pg_lsn <= pg_last_wal_replay_lsn()",
            f"{node.name} to replay up to {lsn}",
            timeout,
            standby=node,
        )

    def _poll_sql(
        self, node: Node, sql: str, what: str, timeout: float | None, standby: Node
    ) -> None:
        """Poll ``sql`` on ``node``; fail fast if a server exits or ``standby`` can never
        stream (its log says why); on timeout show both logs' tails."""
        offsets = {n.name: max(n.log.offset() - 4000, 0) for n in (node, standby)}

        def check() -> bool:
            self.check_streaming(standby)
            for n in {node.name: node, standby.name: standby}.values():
                if not n.is_running():
                    raise RecoveryError(
                        f"PostgreSQL {n.name} exited (code {n.exit_code()}) while waiting for"
                        f" {what}",
                        "the server stopped by itself",
                        "Read the server log lines below",
                        log_lines=n.log.important(),
                        log_name=str(n.log.path),
                    )
            return bool(node.try_scalar(sql))

        def tails() -> list[str]:
            shown = [node] if node is standby else [standby, node]
            return [f"{n.name}: {line}" for n in shown for line in n.log.tail(12, offsets[n.name])]

        poll(check, what, timeout, tails)

    def wait_caught_up(
        self, upstream: Node, replica: Node, lsn: Lsn | None = None, timeout: float | None = None
    ) -> Lsn:
        """Wait until ``upstream`` sees ``replica`` streaming and replayed up to ``lsn``."""
        lsn = lsn or upstream.lsn("write" if not upstream.in_recovery() else "replay")
        self.wait_replayed(replica, lsn, timeout)
        self._poll_sql(
            upstream,
            f"SELECT '{lsn}'::pg_lsn <= replay_lsn AND state = 'streaming' FROM"
            f" pg_stat_replication WHERE application_name = '{replica.name}'",
            f"{replica.name} to catch up with {upstream.name} at {lsn}",
            timeout,
            standby=replica,
        )
        return lsn
