"""Backups of a topology's nodes (pg_basebackup, pg_combinebackup, cold copies) and the
waits that the archive has what a restore needs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

from pytest_pgdr.basics.errors import ConfigError, RecoveryError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.archive import Backup
from pytest_pgdr.cluster.credentials import REPLICATION_USER
from pytest_pgdr.cluster.lsn import LONG_PAGE_HEADER, Lsn
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.cluster.pgcontrol import system_identifier
from pytest_pgdr.cluster.recovery import parse_time
from pytest_pgdr.cluster.topology_base import TopologyBase
from pytest_pgdr.hosts.files import Files

TABLESPACE_TAR = re.compile(r"^[0-9]+\.tar")


class Backups(TopologyBase):
    """Taking backups into the archive, laying them down as data directories."""

    def backup(
        self,
        node: Node,
        label: str | None = None,
        fmt: str = "plain",
        compress: bool = False,
        manifest: bool = True,
        incremental: Backup | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> Backup:
        """``pg_basebackup`` of ``node`` into the archive (fast checkpoint, streamed WAL)."""
        if fmt not in ("plain", "tar"):
            raise ConfigError(f"Unknown backup format {fmt!r}", "valid formats: plain, tar")
        label = self._name("backup", label)
        self.nodes.pop(label, None)
        path = self.archive.new_backup_dir(label)
        args: list[str] = [
            "-D",
            str(path),
            "-X",
            "stream",
            "-c",
            "fast",
            "-l",
            label,
            "-U",
            REPLICATION_USER,
            *self._sync_args(),
        ]
        if fmt == "tar":
            args += ["-F", "t"] + (["-z"] if compress else [])
        else:
            args += self._tablespace_args(node, path.parent / f"{label}.tablespaces", extra_args)
        if not manifest:
            args.append("--no-manifest")
        if incremental is not None:
            self.require(17, "Incremental backup")
            args.append(f"--incremental={incremental.manifest}")
        requested = node.scalar("SELECT clock_timestamp()")  # the backup starts after this
        node.run_tool("pg_basebackup", *args, *extra_args)
        info = Backup(
            files=self.host,
            path=path,
            label=label,
            source=node.name,
            fmt=fmt,
            compressed=compress,
            system_identifier=node.system_identifier(),
            incremental_of=incremental.label if incremental else None,
        )
        info.extra["requested_at"] = requested.isoformat()
        _read_backup_label(self.host, info)
        return info

    def combine(self, backups: Sequence[Backup], label: str | None = None) -> Backup:
        """``pg_combinebackup`` a full backup and its incrementals (oldest first) into a new
        plain backup that restores like a full one (PostgreSQL 17+)."""
        self.require(17, "pg_combinebackup")
        if not backups or backups[-1].source not in self.nodes:
            raise ConfigError("combine() needs backups taken in this topology, oldest first")
        label = self._name("backup", label)
        path = self.archive.backups / label
        if self.host.exists(path):
            raise FileExistsError(f"a backup labelled {label!r} already exists in {path.parent}")
        self.nodes[backups[-1].source].run_tool(
            "pg_combinebackup", *(b.path for b in backups), "-o", path, *self._sync_args()
        )
        info = Backup(
            files=self.host,
            path=path,
            label=label,
            source=backups[-1].source,
            fmt="plain",
            system_identifier=backups[0].system_identifier,
            extra={"combined_from": ",".join(b.label for b in backups)},
        )
        _read_backup_label(self.host, info)
        return info

    def cold_backup(self, node: Node, label: str | None = None) -> Backup:
        """Copy the data directory of a stopped node (runbook Lab 14, step 4)."""
        if node.is_running():
            raise RecoveryError(
                f"A cold backup of {node.name} needs it stopped",
                "copying a running server's files gives an inconsistent copy",
                "Call node.stop() first",
            )
        label = self._name("backup", label)
        path = self.archive.backups / label
        self.host.copy_tree(node.datadir, path)
        for leftover in ("postmaster.pid", "postmaster.opts"):
            self.host.remove_file(path / leftover)
        return Backup(
            files=self.host,
            path=path,
            label=label,
            source=node.name,
            fmt="plain",
            system_identifier=system_identifier(self.host, path),
            extra={"method": "cold copy"},
        )

    def materialize(self, backup: Backup, node: Node) -> None:
        """Lay a backup down as ``node``'s data directory."""
        if backup.fmt == "plain":
            self.host.remove_tree(node.datadir)
            self.host.copy_tree(backup.path, node.datadir)
        else:
            self.host.make_dir(node.datadir)
            for name, dest in (("base", node.datadir), ("pg_wal", node.datadir / "pg_wal")):
                self._extract(backup, name, dest)
        self._relocate_tablespaces(backup, node)

    def _extract(self, backup: Backup, name: str, dest: Path) -> None:
        tarball = backup.path / f"{name}{'.tar.gz' if backup.compressed else '.tar'}"
        if not self.host.exists(tarball):
            return
        proc = self.host.run(["tar", "-xf", str(tarball), "-C", str(dest)])
        if proc.returncode != 0:
            raise RecoveryError(
                f"Extracting {tarball} failed",
                proc.stderr.strip(),
                "Check the backup; pg_verifybackup can tell what is wrong",
            )

    @staticmethod
    def _tablespace_args(node: Node, place: Path, given: Sequence[str] = ()) -> list[str]:
        """``--tablespace-mapping`` of each of ``node``'s tablespaces to ``place/<oid>``: a
        plain copy on the same machine cannot go where the source keeps them. None when the
        caller maps them (``given`` arguments) or there are none."""
        if any(str(a).startswith(("--tablespace-mapping", "-T")) for a in given):
            return []
        rows = node.query(
            "SELECT oid, pg_tablespace_location(oid) FROM pg_tablespace"
            " WHERE pg_tablespace_location(oid) <> ''"
        )
        return [f"--tablespace-mapping={where}={place / str(oid)}" for oid, where in rows]

    def _relocate_tablespaces(self, backup: Backup, node: Node) -> None:
        """Give ``node`` its own copy of each tablespace, in ``<node root>/tablespaces/<oid>``.

        A plain backup's ``pg_tblspc`` links point where ``pg_basebackup --tablespace-mapping``
        put the tablespaces (or at the source's own directories); a tar backup holds them as
        ``<oid>.tar`` with a ``tablespace_map``. Links and map are rewritten to the new places,
        so no restore ever writes into the backup or into another server's tablespace.
        """
        links = node.datadir / "pg_tblspc"
        oids = {name for name in self.host.names(links) if name.isdigit()}
        if backup.fmt == "tar":
            oids |= {
                n.split(".")[0] for n in self.host.names(backup.path) if TABLESPACE_TAR.match(n)
            }
        if not oids:
            return
        places = {oid: node.root / "tablespaces" / oid for oid in sorted(oids)}
        self.host.make_dir(node.root / "tablespaces")
        for oid, place in places.items():
            link = links / oid
            pointed = self.host.read_link(link)
            if backup.fmt == "tar":
                self._extract(backup, oid, self.host.make_dir(place))
            elif pointed is not None:
                self.host.copy_tree(pointed, place)
            if pointed is not None:
                self.host.make_link(place, link)
        mapfile = node.datadir / "tablespace_map"
        if self.host.exists(mapfile):
            lines = [f"{oid} {place}\n" for oid, place in places.items()]
            self.host.write_file(mapfile, "".join(lines))

    def wait_archived(
        self, node: Node, lsn: Lsn | None = None, timeout: float | None = None
    ) -> str:
        """Wait until all WAL before ``lsn`` (default: now) is in the archive.

        Switches to a new segment when ``lsn`` lies in the one being written. Returns the
        name of the last segment needed.
        """
        lsn = lsn or node.lsn("insert")
        seg_size = node.wal_segment_size()
        offset_in_segment = lsn.value % seg_size
        if offset_in_segment <= LONG_PAGE_HEADER and lsn.value > seg_size:
            lsn = Lsn(lsn.value - offset_in_segment - 1)  # nothing written here yet
        segment = node.walfile_name(lsn)
        if node.walfile_name(node.lsn("write")) <= segment:
            node.switch_wal()

        def archived() -> bool:
            if not node.is_running():
                raise RecoveryError(
                    f"{node.name} stopped before archiving {segment}",
                    "the server exited",
                    log_lines=node.log.important(),
                )
            return self.archive.has(segment)

        poll(
            archived,
            f"{node.name} to archive WAL segment {segment}",
            timeout,
            lambda: node.log.tail() + [f"pg_stat_archiver: {self._archiver_stats(node)}"],
        )
        return segment

    @staticmethod
    def _archiver_stats(node: Node) -> str:
        try:
            row = node.query(
                "SELECT archived_count, last_archived_wal, failed_count,"
                " last_failed_wal FROM pg_stat_archiver"
            )[0]
        except Exception as exc:  # the node may be gone; the log tail says why
            return f"unavailable ({exc})"
        archived, last, failed, last_failed = row
        return f"archived {archived} (last {last}), failed {failed} (last {last_failed})"

    def wait_history_archived(self, timeline: int, timeout: float | None = None) -> None:
        name = f"{timeline:08X}.history"
        poll(lambda: self.archive.has(name), f"{name} to reach the archive", timeout)


def _read_backup_label(files: Files, info: Backup) -> None:
    label = info.path / "backup_label"
    if not files.exists(label):
        return
    text = files.read_text(label)
    match = re.search(r"START WAL LOCATION: (\S+)", text)
    info.start_lsn = match.group(1) if match else ""
    match = re.search(r"START TIMELINE: (\d+)", text)
    info.timeline = int(match.group(1)) if match else 1
    match = re.search(r"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", text)
    if match:
        info.extra["start_segment"] = match.group(1)
    match = re.search(r"START TIME: (.+)", text)
    if match:
        info.extra["start_time"] = match.group(1).strip()


def backup_started_after(backup: Backup) -> dt.datetime | None:
    """A moment the backup certainly started after: the server's clock when it was asked
    for, or the (whole-second) START TIME of its backup_label, whichever is later."""
    times = [
        parse_time(backup.extra[key])
        for key in ("requested_at", "start_time")
        if backup.extra.get(key)
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else None
