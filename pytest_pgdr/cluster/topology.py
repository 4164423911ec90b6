"""Topology: builds and tears down the nodes of one drill (primary, backups, replicas, restores)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg

from pytest_pgdr.basics.clock import Stopwatch
from pytest_pgdr.basics.errors import ConfigError, RecoveryError, VersionSkip
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.archive import Archive, Backup
from pytest_pgdr.cluster.credentials import REPLICATION_USER, Credentials
from pytest_pgdr.cluster.lsn import LONG_PAGE_HEADER, Lsn, history_parent, unreplayed_segments
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.cluster.recovery import RecoveryTarget
from pytest_pgdr.cluster.template import (
    SUPERUSER,
    copy_datadir,
    ensure_template,
    new_system_identifier,
    set_system_identifier,
)
from pytest_pgdr.hosts.install import Installation
from pytest_pgdr.hosts.local import LocalHost
from pytest_pgdr.hosts.runtime import child_pids

NAME_RX = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
WAL_READ_TROUBLE = (
    r"incorrect resource manager|invalid (record|magic|contrecord)"
    r"|unexpected pageaddr|record with incorrect|checksum"
)
REPLAY_DONE = re.compile(
    r"recovery stopping|redo done at|pausing at the end of recovery|recovery has paused"
    r"|shutdown at recovery target"
)


class Topology:
    """The nodes, archive and backups of one drill, all on one installation.

    Nodes start from a cached template data directory, each primary with its own system
    identifier. ``close()`` stops every server and removes every directory.
    """

    def __init__(
        self,
        inst: Installation,
        host: LocalHost,
        root: Path,
        cache_dir: Path,
        fsync: bool = False,
        settings: Mapping[str, object] | None = None,
    ) -> None:
        self.inst = inst
        self.host = host
        self.root = host.make_dir(root, 0o711)
        self.cache_dir = cache_dir
        self.fsync = fsync
        self.extra_settings = dict(settings or {})
        self.credentials = Credentials.generate(self.root / "pgpass")
        host.write_file(self.credentials.passfile, self.credentials.pgpass())
        self.nodes: dict[str, Node] = {}
        self._archive: Archive | None = None
        self._counters: dict[str, int] = {}
        self._archive_at_start: dict[str, list[str]] = {}  # per "latest" restore

    # bookkeeping ------------------------------------------------------------------------
    @property
    def major(self) -> int:
        return self.inst.major

    def require(self, major: int, feature: str) -> None:
        """Raise :class:`VersionSkip` when the installation is older than ``major``."""
        if self.inst.major < major:
            raise VersionSkip(
                f"{feature} needs PostgreSQL {major} or newer",
                f"this drill runs on {self.inst.describe()}",
            )

    @property
    def archive(self) -> Archive:
        if self._archive is None:
            self._archive = Archive(self.root / "archive", self.host)
        return self._archive

    def _name(self, prefix: str, name: str | None) -> str:
        if name is None:
            self._counters[prefix] = self._counters.get(prefix, 0) + 1
            name = f"{prefix}{self._counters[prefix]}"
        if not NAME_RX.match(name):
            raise ConfigError(
                f"Bad node name {name!r}",
                "names are lowercase letters, digits and _, up to 31 characters",
            )
        if name in self.nodes:
            raise ConfigError(f"This topology already has a node named {name!r}")
        return name

    def _new_node(self, name: str) -> Node:
        root = self.host.make_dir(self.root / name)
        self.host.make_dir(root / "sock")
        node = Node(
            name, self.inst, self.host, root, self.host.run_dir.claim_port(), self.credentials
        )
        node.conf.update(self.common_settings())
        self.nodes[name] = node
        return node

    def common_settings(self) -> dict[str, object]:
        settings: dict[str, object] = {
            "fsync": self.fsync,
            "shared_buffers": "32MB",
            "max_connections": 50,
            "wal_level": "replica",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "wal_log_hints": True,
            "hot_standby": True,
            "wal_keep_size": "256MB",
            "max_wal_size": "1GB",
            "wal_retrieve_retry_interval": "100ms",
        }
        settings.update(self.extra_settings)
        return settings

    def archive_settings(self) -> dict[str, object]:
        return {
            "archive_mode": "on",
            "archive_command": self.archive.archive_command(),
            "restore_command": self.archive.restore_command(),
        }

    # primaries --------------------------------------------------------------------------
    def primary(
        self,
        name: str = "primary",
        archive: bool = True,
        settings: Mapping[str, object] | None = None,
        start: bool = True,
        wal_limit: str | None = None,
    ) -> Node:
        """A new, independent primary (its own system identifier), archiving if asked.

        ``wal_limit`` (e.g. ``"96m"``) puts its ``pg_wal`` on a file system of that size, for
        ``faults.disk_full`` (Docker backend; ``FaultUnsupported`` on the local one).
        """
        node = self._new_node(self._name("primary", name))
        template = ensure_template(
            self.inst, self.host.user, self.cache_dir, runner=self.host, scratch=self.root
        )
        node.datadir.rmdir() if node.datadir.exists() else None
        copy_datadir(template, node.datadir)
        set_system_identifier(node.datadir, new_system_identifier())
        if wal_limit is not None:
            from pytest_pgdr.drill.faults import limit_wal

            limit_wal(node, wal_limit)
        if archive:
            node.conf.update(self.archive_settings())
        node.conf.update(settings or {})
        if start:
            node.start()
            self._bootstrap_credentials(node)
        return node

    def _bootstrap_credentials(self, node: Node) -> None:
        """Give the superuser and the replication role their generated passwords.

        Sent as SCRAM verifiers over the private socket: no password ever reaches the server.
        """
        socket_port = node.host.server_port(node.name, node.port)
        with psycopg.connect(
            host=str(node.sockdir),
            port=socket_port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
        ) as conn:

            def verifier(password: str, user: str) -> str:
                return conn.pgconn.encrypt_password(
                    password.encode(), user.encode(), b"scram-sha-256"
                ).decode()

            creds = self.credentials
            conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{verifier(creds.password, SUPERUSER)}'")
            conn.execute(
                f"CREATE ROLE {REPLICATION_USER} REPLICATION LOGIN PASSWORD "
                f"'{verifier(creds.replication_password, REPLICATION_USER)}'"
            )

    # backups ----------------------------------------------------------------------------
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
        if not manifest:
            args.append("--no-manifest")
        if incremental is not None:
            self.require(17, "Incremental backup")
            args.append(f"--incremental={incremental.manifest}")
        node.run_tool("pg_basebackup", *args, *extra_args)
        info = Backup(
            path=path,
            label=label,
            source=node.name,
            fmt=fmt,
            compressed=compress,
            system_identifier=node.system_identifier(),
            incremental_of=incremental.label if incremental else None,
        )
        _read_backup_label(info)
        return info

    def _sync_args(self) -> list[str]:
        return [] if self.fsync else ["--no-sync"]

    def combine(self, backups: Sequence[Backup], label: str | None = None) -> Backup:
        """``pg_combinebackup`` a full backup and its incrementals (oldest first) into a new
        plain backup that restores like a full one (PostgreSQL 17+)."""
        self.require(17, "pg_combinebackup")
        if not backups or backups[-1].source not in self.nodes:
            raise ConfigError("combine() needs backups taken in this topology, oldest first")
        label = self._name("backup", label)
        path = self.archive.backups / label
        if path.exists():
            raise FileExistsError(f"a backup labelled {label!r} already exists in {path.parent}")
        self.nodes[backups[-1].source].run_tool(
            "pg_combinebackup", *(b.path for b in backups), "-o", path, *self._sync_args()
        )
        info = Backup(
            path=path,
            label=label,
            source=backups[-1].source,
            fmt="plain",
            system_identifier=backups[0].system_identifier,
            extra={"combined_from": ",".join(b.label for b in backups)},
        )
        _read_backup_label(info)
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
        copy_datadir(node.datadir, path)
        for leftover in ("postmaster.pid", "postmaster.opts"):
            (path / leftover).unlink(missing_ok=True)
        return Backup(
            path=path,
            label=label,
            source=node.name,
            fmt="plain",
            system_identifier=_sysid_of(path),
            extra={"method": "cold copy"},
        )

    def _materialize(self, backup: Backup, node: Node) -> None:
        """Lay a backup down as ``node``'s data directory."""
        if backup.fmt == "plain":
            if node.datadir.exists():
                node.datadir.rmdir()
            copy_datadir(backup.path, node.datadir)
            return
        self.host.make_dir(node.datadir)
        suffix = ".tar.gz" if backup.compressed else ".tar"
        for archive_name, dest in (("base", node.datadir), ("pg_wal", node.datadir / "pg_wal")):
            tarball = backup.path / f"{archive_name}{suffix}"
            if tarball.exists():
                proc = self.host.run(["tar", "-xf", str(tarball), "-C", str(dest)])
                if proc.returncode != 0:
                    raise RecoveryError(
                        f"Extracting {tarball} failed",
                        proc.stderr.strip(),
                        "Check the backup; pg_verifybackup can tell what is wrong",
                    )

    # replicas ---------------------------------------------------------------------------
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

    # point-in-time recovery -------------------------------------------------------------
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
        node = self._new_node(self._name("restore", name))
        self._materialize(backup, node)
        for stale in ("postmaster.pid", "standby.signal"):
            (node.datadir / stale).unlink(missing_ok=True)
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
            self._check_whole_archive_replayed(node, self._archive_at_start.pop(node.name), offset)

    def _check_whole_archive_replayed(self, node: Node, segments: list[str], offset: int) -> None:
        """A missing or corrupt segment ends archive recovery early *without an error*: the
        server promotes with partial data. Refuse that: recovery "to the end of the archive"
        must have replayed every segment the archive held when it started."""
        history = node.datadir / "pg_wal" / f"{node.timeline():08X}.history"
        if not history.exists():
            return
        parent = history_parent(history.read_text())
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
        raise RecoveryError(
            f"Recovery of {node.name} to {target.describe()} failed: the server exited"
            f" (code {node.exit_code()})",
            _why_recovery_failed(text),
            "Check the recovery target against the archive and the backup; the server's own"
            " messages are below",
            log_lines=node.log.important(offset),
            log_name=str(node.log.path),
        )

    # promotion and waits ----------------------------------------------------------------
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

    # teardown ---------------------------------------------------------------------------
    def close(self, keep_to: Path | None = None) -> None:
        """Stop every server; remove the directories (or move them to ``keep_to``)."""
        from pytest_pgdr.drill.faults import heal_all

        heal_all()  # a frozen or cut-off server cannot stop
        for node in self.nodes.values():
            node.close_connections()
            if node.proc is not None and node.is_running():
                self.host.signal(node.proc, signal.SIGQUIT)
        for node in self.nodes.values():
            if node.proc is not None:
                self._reap(node)
            self.host.run_dir.release_port(node.port)
        self.host.close()
        if keep_to is not None:
            keep_to.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.move(str(self.root), str(keep_to))
                return
        shutil.rmtree(self.root, ignore_errors=True)

    def _reap(self, node: Node) -> None:
        """Wait for a postmaster sent SIGQUIT. A SIGQUIT that reaches the archiver while it
        runs archive_command is lost (system() ignores it), and the postmaster then waits 5 s
        before SIGKILL: after a short grace its children get SIGQUIT directly."""
        assert node.proc is not None
        try:
            node.proc.wait(timeout=0.5)
            return
        except subprocess.TimeoutExpired:
            if not isinstance(node.proc, subprocess.Popen):  # a container: stop it whole
                self.host.kill_group(node.proc)
                return
            for child in child_pids(node.proc.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGQUIT)
        try:
            node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.host.kill_group(node.proc)
            node.proc.wait()

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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


def _read_backup_label(info: Backup) -> None:
    label = info.path / "backup_label"
    if not label.exists():
        return
    text = label.read_text(errors="replace")
    match = re.search(r"START WAL LOCATION: (\S+)", text)
    info.start_lsn = match.group(1) if match else ""
    match = re.search(r"START TIMELINE: (\d+)", text)
    info.timeline = int(match.group(1)) if match else 1


def _sysid_of(datadir: Path) -> int:
    from pytest_pgdr.cluster.template import system_identifier

    return system_identifier(datadir)
