"""Point-in-time recovery: restore a backup, replay the archive to a target, watch it get there."""

from __future__ import annotations

import re
from collections.abc import Mapping

import psycopg

from pytest_pgdr.basics.clock import Stopwatch
from pytest_pgdr.basics.errors import RecoveryError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.archive import Backup
from pytest_pgdr.cluster.backups import Backups, backup_started_after
from pytest_pgdr.cluster.lsn import Lsn, archive_gaps, history_parent, unreplayed_segments
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.cluster.recovery import RecoveryTarget

WAL_READ_TROUBLE = (
    r"incorrect resource manager|invalid (record|magic|contrecord)"
    r"|unexpected pageaddr|record with incorrect|checksum"
)
REPLAY_DONE = re.compile(
    r"recovery stopping|redo done at|pausing at the end of recovery|recovery has paused"
    r"|shutdown at recovery target"
)


class PointInTime(Backups):
    """Restores into new nodes, recovered from the archive to a :class:`RecoveryTarget`."""

    def restore(
        self,
        backup: Backup,
        target: RecoveryTarget | None = None,
        name: str | None = None,
        settings: Mapping[str, object] | None = None,
        stopwatch: Stopwatch | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> Node:
        """Restore ``backup`` into a new node and recover it from the archive to ``target``.

        With ``wait``, returns once the target's action is done: promoted (writable), paused
        at the target (read-only), or shut down. Recovery that fails or ends elsewhere raises
        :class:`RecoveryError` with PostgreSQL's own messages. A ``stopwatch`` gets the laps
        "restore base backup", "replay WAL" and, when promoting, "promote".
        """
        target = target or RecoveryTarget.latest()
        _refuse_target_before_backup(backup, target)
        node = self._new_node(self._name("restore", name))
        node.conf.update(self.inherited(self.nodes.get(backup.source)))
        self.materialize(backup, node)
        for stale in ("postmaster.pid", "standby.signal"):
            self.host.remove_file(node.datadir / stale)
        node.conf.update(self.archive_settings())
        node.conf.update(target.settings())
        node.conf.update(settings or {})
        node.signal_file("recovery")
        if stopwatch is not None:
            stopwatch.lap("restore base backup")
        offset = node.log.offset()
        if target.kind == "latest" and not _has_target(node.conf):
            self._archive_at_start[node.name] = self.archive.segments()
        node.start(wait=False)
        if wait:
            self.wait_recovery(node, target, offset, stopwatch, timeout)
        return node

    def wait_recovery(
        self,
        node: Node,
        target: RecoveryTarget,
        offset: int = 0,
        stopwatch: Stopwatch | None = None,
        timeout: float | None = None,
    ) -> None:
        """Wait until recovery reached ``target`` and did its action; fail fast otherwise."""
        state = {"replayed": False}

        def check() -> bool:
            text = node.log.since(offset)
            if not state["replayed"] and REPLAY_DONE.search(text):
                state["replayed"] = True
                if stopwatch is not None:
                    stopwatch.lap("replay WAL")
            if not node.is_running():
                return self._recovery_exit(node, target, text, offset)
            if target.action == "pause" and target.kind != "latest":
                if not (node.pm_status() in ("ready", "standby") and _paused(node)):
                    return False
                if not state["replayed"] and stopwatch is not None:
                    stopwatch.lap("replay WAL")
                    state["replayed"] = True
                return True
            promoted = node.pm_status() == "ready"
            if promoted and node.try_scalar("SELECT pg_is_in_recovery()") is False:
                if not state["replayed"] and stopwatch is not None:
                    stopwatch.lap("replay WAL")
                    state["replayed"] = True
                if stopwatch is not None:
                    stopwatch.lap("promote")
                return True
            return False

        poll(
            check,
            f"{node.name} to recover to {target.describe()}",
            timeout,
            lambda: node.log.tail(offset=offset),
        )
        if target.kind == "latest" and node.name in self._archive_at_start:
            self.check_archive_replayed(node, self._archive_at_start.pop(node.name), offset)

    def check_archive_replayed(self, node: Node, segments: list[str], offset: int) -> None:
        """A missing or corrupt segment ends archive recovery early *without an error*: the
        server promotes with partial data. Refuse that: recovery "to the end of the archive"
        must have replayed every segment the archive held when it started."""
        history = node.datadir / "pg_wal" / f"{node.timeline():08X}.history"
        if not self.host.exists(history):
            return
        parent = history_parent(self.host.read_text(history))
        if parent is None:
            return
        timeline, end = parent
        missed = unreplayed_segments(segments, timeline, end, node.wal_segment_size())
        if not missed:
            return
        node.stop("immediate")
        names = missed[0] if len(missed) == 1 else f"{missed[0]}..{missed[-1]}"
        raise RecoveryError(
            f"Recovery of {node.name} to the end of the archive stopped early, at {end} on"
            f" timeline {timeline}",
            f"the archive holds {len(missed)} later segment(s) of that timeline that were never"
            f" replayed ({names}): a segment is missing or unreadable, so the node held partial"
            " data; it was stopped",
            "Check the archive for a gap or a corrupt segment (the server's messages are below)",
            log_lines=_log_lines(node, offset, WAL_READ_TROUBLE),
            log_name=str(node.log.path),
        )

    def _recovery_exit(self, node: Node, target: RecoveryTarget, text: str, offset: int) -> bool:
        if target.action == "shutdown" and "shutdown at recovery target" in text:
            return True
        why = _why_recovery_failed(text)
        if "recovery ended before configured recovery target" in text:
            why = self._archive_gap(node) or why
        if "before consistent recovery point" in text and target.kind == "lsn":
            start = self._backup_start_lsn(node)
            if start is not None and Lsn.parse(target.value) < start:
                why = (
                    f"the target LSN {target.value} lies before the backup, which starts at {start}"
                )
        raise RecoveryError(
            f"Recovery of {node.name} to {target.describe()} failed: the server exited"
            f" (code {node.exit_code()})",
            why,
            "Check the recovery target against the archive and the backup; the server's own"
            " messages are below",
            log_lines=node.log.important(offset),
            log_name=str(node.log.path),
        )

    def _archive_gap(self, node: Node) -> str | None:
        """Why recovery ran out of WAL, when the archive has a hole before its last segment."""
        first = _label_value(node, r"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)")
        segments = self.archive.segments()
        if first is None or not segments:
            return None
        size = self.archive.segment_size(segments[-1])
        missing = archive_gaps(segments, first, size)
        if not missing:
            return None
        named = missing[0] if len(missing) == 1 else f"{missing[0]} (and {len(missing) - 1} more)"
        return (
            f"the archive has a gap: WAL segment {named} is missing while later segments (up"
            f" to {segments[-1]}) are there, and replay cannot cross a missing segment, so it"
            " ended there, before the target; restore the segment into the archive (or restore"
            " a base backup taken after it)"
        )

    @staticmethod
    def _backup_start_lsn(node: Node) -> Lsn | None:
        text = _label_value(node, r"START WAL LOCATION: (\S+)")
        return Lsn.parse(text) if text else None


def _label_value(node: Node, pattern: str) -> str | None:
    """A value from the restored backup_label (renamed backup_label.old once recovery began)."""
    for name in ("backup_label", "backup_label.old"):
        path = node.datadir / name
        if node.host.exists(path):
            match = re.search(pattern, node.host.read_text(path))
            if match:
                return match.group(1)
    return None


def _refuse_target_before_backup(backup: Backup, target: RecoveryTarget) -> None:
    """A backup only rolls forward: a target time before it would stop at the first commit
    after it, and promote with the backup's data, without a word. Refuse it up front."""
    when = target.time_value
    started = backup_started_after(backup)
    if when is None or started is None or when >= started:
        return
    raise RecoveryError(
        f"The recovery target time {target.value} lies before base backup {backup.label},"
        f" which started at {started.isoformat()} or later",
        "replaying WAL from a backup only moves forward from its start: PostgreSQL would stop"
        " at the first commit after the backup and promote with the backup's data, not the"
        " data of the target time",
        "Restore an older base backup, one taken before the target time, or pick a later target",
    )


def _log_lines(node: Node, offset: int, extra: str, count: int = 15) -> list[str]:
    """The log's important lines and those matching ``extra``, in order."""
    important = set(node.log.important(offset, count=200))
    rx = re.compile(extra)
    return [line for line in node.log.lines(offset) if line in important or rx.search(line)][
        -count:
    ]


def _has_target(conf: Mapping[str, object]) -> bool:
    """Whether settings name a recovery target (a stop point other than the archive's end)."""
    keys = (
        "recovery_target",
        "recovery_target_xid",
        "recovery_target_time",
        "recovery_target_name",
        "recovery_target_lsn",
    )
    return any(str(conf.get(key, "")) for key in keys)


def _paused(node: Node) -> bool:
    try:
        return node.replay_pause_state() == "paused"
    except psycopg.OperationalError:
        return False


def _why_recovery_failed(text: str) -> str:
    for pattern, why in (
        (r"multiple recovery targets specified", "two recovery targets were set at once"),
        (
            r"recovery ended before configured recovery target was reached",
            "the archive ends before the recovery target: it was never reached",
        ),
        (
            r"requested recovery stop point is before consistent recovery point",
            "the target lies before the backup's consistency point",
        ),
        (
            r"could not locate required checkpoint record|invalid checkpoint record",
            "WAL needed by the backup is missing",
        ),
        (r"must specify restore_command", "no restore_command was configured"),
        (r"wal_level=minimal", "the WAL was generated with wal_level=minimal"),
    ):
        if re.search(pattern, text):
            return why
    fatal = [line for line in text.splitlines() if "FATAL" in line or "PANIC" in line]
    return fatal[-1].split("FATAL:")[-1].strip() if fatal else "see the server log"
