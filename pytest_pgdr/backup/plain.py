"""PostgreSQL's own tools: ``pg_basebackup`` into the topology's archive, ``cp`` for WAL.

A thin wrapper: backups and restores are the topology's own (``Topology.backup``,
``combine``, ``restore``); this member only gives them the shape every tool has.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.backup.base import BackupToolError, RepoInfo, ToolBackup, files_under, tool_lines
from pytest_pgdr.backup.restore import choose
from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.cluster.recovery import RecoveryTarget

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.archive import Backup
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology


class Plain:
    """The :class:`~pytest_pgdr.backup.base.BackupTool` for pg_basebackup and the archive."""

    name = "plain"
    capabilities: frozenset[str] = frozenset({"standby_backup"})

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.kinds: tuple[str, ...] = ("full", "incr") if topology.major >= 17 else ("full",)
        self._backups: dict[str, tuple[ToolBackup, Backup]] = {}
        # a restore copies files unchecked: pg_verifybackup first, as a runbook would
        self.verify_before_restore = True

    def version(self) -> str:
        return self.topology.inst.version

    def wal_settings(self, node: Node) -> dict[str, object]:
        return self.topology.archive_settings()

    def attach(self, node: Node) -> None:
        """archive_command into the topology's archive (and, from PostgreSQL 17 on, WAL
        summaries, which incremental backups need)."""
        wanted = self.wal_settings(node)
        if self.topology.major >= 17:
            wanted["summarize_wal"] = True
        if all(node.conf.get(key) == value for key, value in wanted.items()):
            return
        was_on = node.conf.get("archive_mode") == "on"
        node.conf.update(wanted)
        if was_on and node.is_running():
            node.reload()
        else:
            node.restart()

    def wait_archived(self, node: Node, timeout: float | None = None) -> str:
        return self.topology.wait_archived(node, timeout=timeout)

    def backup(self, node: Node, kind: str = "full", standby: Node | None = None) -> ToolBackup:
        if kind not in self.kinds:
            raise ConfigError(
                f"pg_basebackup cannot take a {kind!r} backup on PostgreSQL {self.topology.major}",
                f"valid kinds here: {', '.join(self.kinds)}",
            )
        prior = self._latest() if kind == "incr" else None
        started = time.time()
        raw = self.topology.backup(standby or node, incremental=prior[1] if prior else None)
        made = ToolBackup(
            id=raw.label,
            kind=kind,
            tool=self.name,
            started=started,
            stopped=time.time(),
            start_lsn=raw.start_lsn,
            start_wal=_wal_of(raw),
            size=raw.size_bytes(),
            prior=prior[0].id if prior else None,
        )
        self._backups[made.id] = (made, raw)
        return made

    def _latest(self) -> tuple[ToolBackup, Backup]:
        if not self._backups:
            raise ConfigError("An incremental backup needs a full backup before it")
        return list(self._backups.values())[-1]

    def info(self) -> RepoInfo:
        archive = self.topology.archive
        return RepoInfo(
            self.name, tuple(b for b, _ in self._backups.values()), tuple(archive.segments())
        )

    def verify(self, backup: ToolBackup | None = None, wal: bool = True) -> list[str]:
        """``pg_verifybackup`` on each backup (or one); the archive's continuity."""
        chosen = [self._backups[backup.id]] if backup else list(self._backups.values())
        out: list[str] = []
        for made, raw in chosen:
            node = self.topology.nodes.get(raw.source) or next(iter(self.topology.nodes.values()))
            proc = node.run_tool("pg_verifybackup", "-n", raw.path, check=False)
            if proc.returncode != 0:
                raise BackupToolError(
                    f"pg_verifybackup found a problem in backup {made.id}",
                    f"pg_verifybackup says: {tool_lines(proc)[-1].strip()}",
                    "Do not restore this backup: take a new one",
                    log_lines=tool_lines(proc)[-20:],
                    log_name="pg_verifybackup output",
                )
            out += proc.stdout.splitlines()
        gaps = self.info().gaps() if wal else []
        if gaps:
            raise BackupToolError(
                "The WAL archive has a gap",
                f"segments {gaps[0][0]}..{gaps[0][1]} are missing",
                "Restores past the gap lose data: take a new backup",
            )
        return out

    def expire(self, keep_full: int) -> list[str]:
        """Remove all but the newest ``keep_full`` full backups (with their incrementals)."""
        fulls = [bid for bid, (b, _) in self._backups.items() if b.kind == "full"]
        keep_from = fulls[-keep_full] if 0 < keep_full <= len(fulls) else fulls[0]
        ids = list(self._backups)
        removed = ids[: ids.index(keep_from)]
        for bid in removed:
            shutil.rmtree(self._backups.pop(bid)[1].path, ignore_errors=True)
        return removed

    def backup_files(self, backup: ToolBackup) -> list[Path]:
        return files_under(self._backups[backup.id][1].path)

    def wal_path(self, segment: str) -> Path | None:
        path = self.topology.archive.wal / segment
        return path if path.is_file() else None

    def _chain(self, made: ToolBackup) -> list[Backup]:
        chain = [self._backups[made.id][1]]
        while made.prior is not None:
            made = self._backups[made.prior][0]
            chain.insert(0, self._backups[made.id][1])
        return chain

    def _raw(self, backup: ToolBackup | None) -> Backup:
        made = backup if backup is not None else choose(self.info(), None)
        chain = self._chain(made)
        return chain[0] if len(chain) == 1 else self.topology.combine(chain)

    def restore_files(
        self, backup: ToolBackup | None, target: RecoveryTarget, node: Node, delta: bool = False
    ) -> None:
        if delta:
            raise ConfigError("pg_basebackup backups have no delta restore")
        if node.datadir.exists() and not any(node.datadir.iterdir()):
            node.datadir.rmdir()
        self.topology.materialize(self._raw(backup), node)
        node.conf.update(self.wal_settings(node))
        node.conf.update(target.settings())
        node.signal_file("recovery")

    def restore(
        self,
        backup: ToolBackup | None = None,
        target: RecoveryTarget | None = None,
        name: str | None = None,
        settings: Mapping[str, object] | None = None,
        stopwatch: Stopwatch | None = None,
        delta: Node | None = None,
        wait: bool = True,
    ) -> Node:
        if delta is not None:
            raise ConfigError(
                "pg_basebackup backups have no delta restore",
                "the plain member copies whole data directories",
                "Check tool.capabilities for 'delta' before asking for one",
            )
        made = backup if backup is not None else choose(self.info(), None)
        if self.verify_before_restore:
            self.verify(made, wal=False)
        raw = self._raw(made)
        if stopwatch is not None:
            stopwatch.lap("fetch")
        node = self.topology.restore(
            raw, target, name=name, settings=settings, stopwatch=stopwatch, wait=wait
        )
        if stopwatch is not None:  # the topology says "restore base backup": one name for all
            stopwatch.laps[:] = [
                ("restore files" if lap == "restore base backup" else lap, sec)
                for lap, sec in stopwatch.laps
            ]
        return node


def _wal_of(raw: Backup) -> str:
    """The first WAL segment a backup needs, from its start LSN and timeline."""
    if not raw.start_lsn:
        return ""
    high, low = (int(part, 16) for part in raw.start_lsn.split("/"))
    return f"{raw.timeline:08X}{high:08X}{low >> 24:08X}"
