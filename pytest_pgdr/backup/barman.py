"""Barman (Debian's 3.4): ``backup_method = postgres``, WAL through ``archive_command``.

Barman runs as the server OS user (``barman_user``) with its home, lock and log under the
topology's run directory. WAL reaches it the way Barman documents for ``archiver = on``:
the server's ``archive_command`` copies each segment into Barman's incoming directory and
``barman archive-wal`` (what ``barman cron`` runs) files it into the catalogue (no SSH).
Connections go over TCP with the topology's pgpass file: no password is in the config.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pgdr.backup.barman_cli import (
    BACKUP_DIR,
    PROGRAM,
    missing,
    parse_backup,
    tablespace_options,
    target_options,
)
from pytest_pgdr.backup.base import (
    BackupToolError,
    RepoInfo,
    Runner,
    ToolBackup,
    ToolRefusesVersion,
    files_under,
    first_named,
    segments_in,
    tool_lines,
)
from pytest_pgdr.backup.restore import choose, restore_through
from pytest_pgdr.backup.restore import wait_archived as wait_server_archived
from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.credentials import REPLICATION_USER
from pytest_pgdr.cluster.recovery import RecoveryTarget

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology

SERVER = "pgdr"


class Barman:
    """The :class:`~pytest_pgdr.backup.base.BackupTool` for Barman."""

    name = "barman"
    kinds: tuple[str, ...] = ("full",)
    capabilities: frozenset[str] = frozenset()

    def __init__(self, topology: Topology, program: str | None = None) -> None:
        found = program or shutil.which(PROGRAM)
        if found is None:
            raise missing()
        self.program = found
        self.topology = topology
        host = topology.host
        self.root = host.make_dir(topology.root / "barman")
        self.home = host.make_dir(self.root / "home")
        self.incoming = host.make_dir(host.make_dir(self.home / SERVER) / "incoming")
        self.config = self.root / "barman.conf"
        self.retention: int | None = None
        # barman recover copies files unchecked: verify-backup first, as a runbook would
        self.verify_before_restore = True
        self.node: Node | None = None
        env = {"PGPASSFILE": str(topology.credentials.passfile), "PGCONNECT_TIMEOUT": "10"}
        self.run = Runner("Barman", host, env, self.root)
        self._version: str | None = None
        self.sources: dict[str, str] = {}  # backup id -> the node it was taken from
        self._shown: dict[str, dict[str, Any]] = {}
        self._os_user: str | None = None

    # configuration ----------------------------------------------------------------------
    def config_text(self, node: Node) -> str:
        port = node.host.server_port(node.name, node.port)
        host = node.host.peer_address(node.name)
        retention = f"REDUNDANCY {self.retention}" if self.retention else ""
        return (
            "; written by pytest-pgdr\n[barman]\n"
            f"barman_home = {self.home}\n"
            f"barman_user = {self.os_user()}\n"
            f"log_file = {self.root / 'barman.log'}\n"
            "log_level = INFO\nminimum_redundancy = 0\n"
            f"\n[{SERVER}]\ndescription = pytest-pgdr {node.name}\n"
            f"conninfo = host={host} port={port} user={node.credentials.superuser}"
            " dbname=postgres\n"
            f"streaming_conninfo = host={host} port={port} user={REPLICATION_USER}"
            " dbname=postgres\n"
            "backup_method = postgres\narchiver = on\nstreaming_archiver = off\n"
            "immediate_checkpoint = true\n"
            f"path_prefix = {node.inst.bindir}\n"
            + (f"retention_policy = {retention}\n" if retention else "")
        )

    def os_user(self) -> str:
        """The user Barman runs as, by its name where the tools run (a container's own)."""
        if self._os_user is None:
            # a quick docker exec may return no output (about 1 in 1000): ask again
            ask = ["id", "-un"]
            named = lambda: self.run(ask, "to name its OS user").stdout.strip() or None  # noqa: E731
            self._os_user = poll(named, "id -un to name the OS user Barman runs as", 10)
        return self._os_user

    def write_config(self, node: Node) -> None:
        self.node = node
        self.topology.host.write_file(self.config, self.config_text(node), 0o640)

    def barman(self, *args: str) -> list[str]:
        return [self.program, "-c", str(self.config), *args]

    def version(self) -> str:
        if self._version is None:
            proc = self.run([self.program, "--version"], "to report its version")
            self._version = (proc.stdout or proc.stderr).split()[0]
        return self._version

    def wal_settings(self, node: Node) -> dict[str, object]:
        inc = shlex.quote(str(self.incoming))
        return {
            "archive_mode": "on",
            "archive_command": (
                f"if test -f {inc}/%f; then cmp -s %p {inc}/%f; "
                f"else cp %p {inc}/.%f.tmp && mv {inc}/.%f.tmp {inc}/%f; fi"
            ),
        }

    def attach(self, node: Node) -> None:
        """Barman's server entry for ``node``, its archive_command, then ``barman check``."""
        self._refuse_newer_postgres()
        self.write_config(node)
        was_on = str(node.conf.get("archive_mode", "off")) in ("on", "always", "True")
        node.conf.update(self.wal_settings(node))
        if was_on and node.is_running():
            node.reload()
        else:
            node.restart()
        self.wait_archived(node)
        self.check()

    def check(self) -> list[str]:
        """``barman check``: connection, archiving, pg_basebackup compatibility."""
        proc = self.run(self.barman("check", SERVER), "check", check=False)
        lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
        failed = [line for line in lines if "FAILED" in line]
        if proc.returncode != 0 or failed:
            self._refused(failed)
            raise BackupToolError(
                f"barman check failed for {SERVER}",
                f"Barman says: {(failed or tool_lines(proc) or ['nothing'])[0]}",
                "Fix what it names; its full report is below",
                log_lines=lines or tool_lines(proc),
                log_name="barman check",
            )
        return lines

    def _refuse_newer_postgres(self) -> None:
        """Barman releases before 3.6 know PostgreSQL up to 15 (Debian bookworm has 3.4)."""
        numbers = [int(n) for n in re.findall(r"\d+", self.version())[:2]]
        if numbers and tuple(numbers) < (3, 6) and self.topology.major > 15:
            raise ToolRefusesVersion(
                f"Barman {self.version()} predates PostgreSQL {self.topology.major}",
                "Barman releases before 3.6 support PostgreSQL up to 15",
                "Run the Barman drills on PostgreSQL 15 (--pgdr-postgres 15), or install a newer"
                " Barman (pip install barman) for this version",
            )

    def _refused(self, failed: list[str]) -> None:
        for line in failed:
            if re.search(r"pg_basebackup compatible|PostgreSQL version|unsupported", line):
                raise ToolRefusesVersion(
                    f"Barman {self.version()} refuses PostgreSQL {self.topology.major}",
                    f"barman check says: {line}",
                    "Run the Barman drills on a PostgreSQL it supports (--pgdr-postgres 15)",
                    log_lines=failed,
                    log_name="barman check",
                )

    def wait_archived(self, node: Node, timeout: float | None = None) -> str:
        """The server archived everything into incoming; ``archive-wal`` files it."""
        segment = wait_server_archived(node, timeout)
        self.archive_wal()
        return segment

    def archive_wal(self) -> None:
        self.run(self.barman("archive-wal", SERVER), "archive-wal")

    # backups ----------------------------------------------------------------------------
    def backup(self, node: Node, kind: str = "full", standby: Node | None = None) -> ToolBackup:
        if kind not in self.kinds or standby is not None:
            raise ConfigError(
                f"Barman (backup_method = postgres) takes full backups of the primary only,"
                f" not a {kind!r} backup{' from a standby' if standby else ''}",
                "check tool.kinds and tool.capabilities first",
            )
        if node is not self.node:
            self.write_config(node)
        proc = self.run(self.barman("backup", SERVER), f"a backup of {node.name}")
        match = BACKUP_DIR.search(proc.stdout)
        if match is None:
            raise BackupToolError(
                "Barman reported success but named no backup directory",
                "its output lacks the 'Starting backup ... in DIR' line",
                "Read its output below",
                log_lines=proc.stdout.splitlines()[-20:],
                log_name="barman backup",
            )
        self.sources[match.group(1)] = node.name
        return self._wait_done(node, match.group(1))

    def _wait_done(self, node: Node, bid: str) -> ToolBackup:
        """A postgres-method backup is WAITING_FOR_WALS until its last segment is filed;
        ``archive-wal`` and ``check-backup`` (what ``barman cron`` runs) then mark it DONE."""

        def done() -> ToolBackup | None:
            now = {b.id: b for b in self.info().backups}.get(bid)
            if now is not None and now.status == "DONE":
                return now
            if now is not None and now.status == "FAILED":
                raise BackupToolError(
                    f"Barman marks backup {bid} FAILED",
                    "check-backup found WAL the backup needs missing",
                    "Read Barman's log below",
                    log_lines=self.run.log_tail(),
                    log_name="barman log",
                )
            wait_server_archived(node)
            self.archive_wal()
            self.run(self.barman("check-backup", SERVER, bid), f"check-backup {bid}")
            return None

        return poll(done, f"Barman backup {bid} to be DONE", interval=0.01)

    def list_json(self) -> list[dict[str, Any]]:
        proc = self.run(
            [self.program, "-c", str(self.config), "-f", "json", "list-backups", SERVER],
            "list-backups",
        )
        data = json.loads(proc.stdout or "{}")
        rows: list[dict[str, Any]] = data.get(SERVER, [])
        return rows

    def info(self) -> RepoInfo:
        backups = tuple(self._show(row) for row in reversed(self.list_json()))
        return RepoInfo(self.name, backups, tuple(self.segments()))

    def segments(self) -> list[str]:
        """The WAL segments in Barman's catalogue, read from its directory (no barman run)."""
        wals = self.home / SERVER / "wals"
        return list(segments_in([p.name for p in wals.glob("*/*") if p.is_file()]))

    def _show(self, row: Mapping[str, Any]) -> ToolBackup:
        bid = str(row["backup_id"])
        if bid not in self._shown:  # what show-backup says of a finished backup never changes
            proc = self.run(
                [self.program, "-c", str(self.config), "-f", "json", "show-backup", SERVER, bid],
                f"show-backup {bid}",
            )
            self._shown[bid] = json.loads(proc.stdout or "{}").get(SERVER, {})
        return parse_backup(bid, row, self._shown[bid])

    def backup_files(self, backup: ToolBackup) -> list[Path]:
        return files_under(self.home / SERVER / "base" / backup.id / "data")

    def wal_path(self, segment: str) -> Path | None:
        return first_named(self.home / SERVER / "wals", "*/*", segment)

    def verify(self, backup: ToolBackup | None = None) -> list[str]:
        """``barman check-backup`` (the WAL it needs is there), ``verify-backup``
        (pg_verifybackup against the manifest) for one backup or each, and no hole in the
        WAL catalogue after the oldest of them."""
        info = self.info()
        chosen = [backup] if backup else list(info.backups)
        out: list[str] = []
        for one in chosen:
            out += self._verify_one(one)
        gaps = [gap for one in chosen for gap in info.gaps_after(one)]
        if gaps:
            first, last = gaps[0]
            raise BackupToolError(
                f"Barman's WAL catalogue for {SERVER} has a gap: {first}..{last} are missing",
                "a restore past the gap stops there (barman recover fails copying WAL)",
                "Take a new backup now, and find why archiving lost segments",
                log_lines=[f"missing {a}..{b}" for a, b in gaps],
                log_name="catalogue gaps",
            )
        return out

    def _verify_one(
        self, one: ToolBackup, commands: tuple[str, ...] = ("check-backup", "verify-backup")
    ) -> list[str]:
        out: list[str] = []
        for command in commands:
            proc = self.run(
                [self.program, "-c", str(self.config), command, SERVER, one.id],
                f"{command} {one.id}",
                check=False,
            )
            out += proc.stdout.splitlines()
            if proc.returncode != 0 or re.search(r"FAILED|ERROR|error", proc.stdout):
                raise self._verify_failed(command, one, proc)
        if "check-backup" not in commands:
            return out
        status = {b.id: b for b in self.info().backups}[one.id].status
        if status != "DONE":
            raise BackupToolError(
                f"Barman marks backup {one.id} {status}",
                "check-backup found WAL it needs missing from the catalogue",
                "Do not rely on this backup: take a new one and find the missing WAL",
                log_lines=self.run.log_tail(),
                log_name="barman log",
            )
        return out

    def _verify_failed(self, command: str, one: ToolBackup, proc: Any) -> BackupToolError:
        lines = tool_lines(proc)
        return BackupToolError(
            f"barman {command} found a problem in backup {one.id}",
            f"Barman says: {lines[0].strip() if lines else 'exit ' + str(proc.returncode)}",
            "Do not restore this backup: take a new one, and find what altered its files",
            log_lines=lines[-20:],
            log_name=f"barman {command}",
        )

    def expire(self, keep_full: int) -> list[str]:
        """Barman's ``REDUNDANCY`` policy: list-backups marks what it would drop
        (OBSOLETE); each of those goes through ``barman delete``."""
        self.retention = keep_full
        if self.node is not None:
            self.write_config(self.node)
        obsolete = [
            str(row["backup_id"])
            for row in self.list_json()
            if str(row.get("retention_status", "")).startswith("OBSOLETE")
        ]
        for bid in obsolete:
            self.run(self.barman("delete", SERVER, bid), f"delete {bid}")
        return obsolete

    # restores ---------------------------------------------------------------------------
    def restore_files(
        self, backup: ToolBackup | None, target: RecoveryTarget, node: Node, delta: bool = False
    ) -> None:
        if delta:
            raise ConfigError("Barman has no delta restore into an existing data directory")
        backup = backup or choose(self.info(), None)
        if self.verify_before_restore:
            self._verify_one(backup, ("verify-backup",))  # recover itself needs every WAL
        options = target_options(target) + tablespace_options(backup, node.root / "tablespaces")
        args = self.barman("recover", *options, SERVER, backup.id, str(node.datadir))
        proc = self.run(args, f"recover into {node.name}", check=False)
        if proc.returncode != 0:
            raise self.run.failure(
                f"recover into {node.name}",
                args,
                proc,
                "Check the backup and the target against `barman list-backups`; the tool's"
                " own messages are below",
            )

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
                "Barman has no delta restore",
                "barman recover lays down a whole data directory",
                "Check tool.capabilities for 'delta' before asking for one",
            )
        return restore_through(
            "Barman", self.topology, self.info, self.restore_files, self.wal_settings, backup,
            target, name, settings, stopwatch, None, wait, self.sources, self.segments,
        )  # fmt: skip
