"""pgBackRest: one stanza per topology, its repository under the topology's run directory.

The configuration holds only the repository and the tool's own paths; every command names
the node it concerns (``--pg1-path``, port, socket), so backups follow a switchover and a
restored node archives its new timeline into the same stanza. Servers are reached over their
private socket (trust for the server user): no password is in any file the tool reads.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pgdr.backup.base import (
    BackupToolError,
    RepoInfo,
    Runner,
    ToolBackup,
    ToolRefusesVersion,
    ToolUnavailable,
    files_under,
    first_named,
    segments_in,
    tool_lines,
)
from pytest_pgdr.backup.restore import restore_through, wait_archived
from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.cluster.recovery import RecoveryTarget

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology

PROGRAM = "pgbackrest"
STANZA = "pgdr"
REFUSED = re.compile(r"is this version of PostgreSQL supported|unsupported", re.IGNORECASE)
KIND_TYPES = {"immediate": "immediate", "xid": "xid", "time": "time", "name": "name", "lsn": "lsn"}


def find_program() -> str | None:
    return shutil.which(PROGRAM)


def missing() -> ToolUnavailable:
    return ToolUnavailable(
        "pgBackRest is not installed",
        f"no {PROGRAM} program on PATH",
        "Install it (Debian: apt-get install pgbackrest) to run the pgBackRest drills",
    )


class PgBackRest:
    """The :class:`~pytest_pgdr.backup.base.BackupTool` for pgBackRest."""

    name = "pgbackrest"
    kinds: tuple[str, ...] = ("full", "diff", "incr")
    capabilities: frozenset[str] = frozenset({"delta", "standby_backup"})

    def __init__(self, topology: Topology, program: str | None = None) -> None:
        found = program or find_program()
        if found is None:
            raise missing()
        self.program = found
        self.topology = topology
        self.root = topology.host.make_dir(topology.root / "pgbackrest")
        self.repo = topology.host.make_dir(self.root / "repo")
        self.log_dir = topology.host.make_dir(self.root / "log")
        self.config = self.root / "pgbackrest.conf"
        for sub in ("lock", "spool"):
            topology.host.make_dir(self.root / sub)
        topology.host.write_file(self.config, self.config_text(), 0o640)
        self.run = Runner("pgBackRest", topology.host, {}, self.log_dir)
        self._version: str | None = None
        self.sources: dict[str, str] = {}  # backup id -> the node it was taken from
        self._stanza_for: Node | None = None

    def config_text(self) -> str:
        return (
            "# written by pytest-pgdr\n[global]\n"
            f"repo1-path={self.repo}\n"
            f"log-path={self.log_dir}\n"
            f"lock-path={self.root / 'lock'}\n"
            f"spool-path={self.root / 'spool'}\n"
            "log-level-console=warn\nlog-level-file=detail\n"
            "start-fast=y\ncompress-type=lz4\nprocess-max=2\n"
            f"repo1-retention-full=9999\n\n[{STANZA}]\n"
        )

    # commands ---------------------------------------------------------------------------
    def argv(self, command: str, *options: str, node: Node | None = None) -> list[str]:
        args = [self.program, f"--config={self.config}", f"--stanza={STANZA}"]
        if node is not None:
            args += node_options(node, 1)
        return [*args, *options, command]

    def version(self) -> str:
        if self._version is None:
            proc = self.run([self.program, "version"], "to report its version")
            self._version = proc.stdout.strip().removeprefix("pgBackRest ").strip()
        return self._version

    def wal_settings(self, node: Node) -> dict[str, object]:
        base = [self.program, f"--config={self.config}", f"--stanza={STANZA}"]
        base.append(f"--pg1-path={node.datadir}")
        cmd = shlex.join(base)
        return {
            "archive_mode": "on",
            "archive_command": f"{cmd} archive-push %p",
            "restore_command": f'{cmd} archive-get %f "%p"',
        }

    def attach(self, node: Node) -> None:
        """archive_command through pgBackRest, ``stanza-create`` (once), then ``check``."""
        was_on = str(node.conf.get("archive_mode", "off")) in ("on", "always", "True")
        node.conf.update(self.wal_settings(node))
        if was_on and node.is_running():
            node.reload()
        else:
            node.restart()
        if self._stanza_for is None:
            self._refused_or_raise(
                self.run(self.argv("stanza-create", node=node), "stanza-create", check=False)
            )
            self._stanza_for = node
        self.run(self.argv("check", node=node), f"check against {node.name}")

    def _refused_or_raise(self, proc: Any) -> None:
        if proc.returncode == 0:
            return
        text = f"{proc.stderr}\n{proc.stdout}"
        if REFUSED.search(text):
            said = [line.strip() for line in text.splitlines() if line.strip()]
            why = next((line for line in said if "Version" in line), said[0])
            raise ToolRefusesVersion(
                f"pgBackRest {self.version()} refuses PostgreSQL {self.topology.major}",
                f"pgBackRest says: {why}",
                "Run the pgBackRest drills on a PostgreSQL it supports (--pgdr-postgres 15),"
                " or install a pgBackRest that supports this version",
                log_lines=said[-10:],
                log_name="pgBackRest output",
            )
        raise self.run.failure("stanza-create", self.argv("stanza-create"), proc)

    def wait_archived(self, node: Node, timeout: float | None = None) -> str:
        return wait_archived(node, timeout)

    def backup(self, node: Node, kind: str = "full", standby: Node | None = None) -> ToolBackup:
        if kind not in self.kinds:
            raise ConfigError(f"Unknown backup kind {kind!r}", f"valid: {', '.join(self.kinds)}")
        before = {b.id for b in self.info().backups}
        options = [f"--type={kind}"]
        if standby is not None:
            options += ["--backup-standby", *node_options(standby, 2)]
        self.run(self.argv("backup", *options, node=node), f"a {kind} backup of {node.name}")
        made = [b for b in self.info().backups if b.id not in before]
        if not made:
            raise BackupToolError(
                f"pgBackRest reported success but lists no new {kind} backup",
                "its info shows the same backups as before",
                "Read its log",
                log_lines=self.run.log_tail(),
            )
        self.sources[made[-1].id] = node.name
        return made[-1]

    def info_json(self) -> list[dict[str, Any]]:
        proc = self.run(self.argv("info", "--output=json"), "info")
        data: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
        return data

    def info(self) -> RepoInfo:
        stanzas = [s for s in self.info_json() if s.get("name") == STANZA]
        backups = tuple(parse_backup(raw) for s in stanzas for raw in s.get("backup", []))
        return RepoInfo(self.name, backups, segments_in(self.wal_files()))

    def wal_files(self) -> list[str]:
        archive = self.repo / "archive" / STANZA
        if not archive.is_dir():
            return []
        return [p.name for p in archive.glob("*/*/*") if p.is_file()]

    def backup_files(self, backup: ToolBackup) -> list[Path]:
        return files_under(self.repo / "backup" / STANZA / backup.id / "pg_data")

    def wal_path(self, segment: str) -> Path | None:
        return first_named(self.repo / "archive" / STANZA, "*/*/*", segment)

    def verify(self, backup: ToolBackup | None = None) -> list[str]:
        """``pgbackrest verify``: every file's checksum, WAL continuity per archive."""
        options = ["--log-level-console=detail"]
        if backup is not None:
            options.append(f"--set={backup.id}")
        args = self.argv("verify", *options)
        proc = self.run(args, "verify", check=False)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        bad = [line for line in lines if VERIFY_BAD.search(line)] + wal_breaks(lines)
        if proc.returncode != 0 or bad:
            said = (bad or tool_lines(proc) or [f"exit code {proc.returncode}"])[0].strip()
            raise BackupToolError(
                "pgBackRest verify found a problem in the repository"
                + (f" (backup {backup.id})" if backup else ""),
                f"pgBackRest says: {said}",
                "Do not rely on this repository for a restore: take a new full backup, and find"
                " what altered or removed its files",
                log_lines=(bad or tool_lines(proc))[-20:],
                log_name="pgBackRest verify",
            )
        return lines

    def expire(self, keep_full: int) -> list[str]:
        before = [b.id for b in self.info().backups]
        self.run(
            self.argv("expire", f"--repo1-retention-full={keep_full}"),
            f"expire keeping {keep_full} full backup(s)",
        )
        after = {b.id for b in self.info().backups}
        return [bid for bid in before if bid not in after]

    def restore_files(
        self,
        backup: ToolBackup | None,
        target: RecoveryTarget,
        node: Node,
        delta: bool = False,
    ) -> None:
        # tablespaces into the node's own directory, not back where the backup found them
        # (on one machine: the live primary's)
        options = [
            f"--pg1-path={node.datadir}",
            f"--tablespace-map-all={node.root / 'tablespaces'}",
            *target_options(target),
        ]
        if backup is not None:
            options.append(f"--set={backup.id}")
        if delta:
            options.append("--delta")
        args = self.argv("restore", *options)
        proc = self.run(args, f"restore into {node.name}", check=False)
        if proc.returncode != 0:
            raise self.run.failure(
                f"restore into {node.name}",
                args,
                proc,
                "Check the backup set and the target against `pgbackrest info`; the tool's own"
                " messages are below",
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
        return restore_through(
            "pgBackRest",
            self.topology,
            self.info,
            self.restore_files,
            self.wal_settings,
            backup,
            target,
            name,
            settings,
            stopwatch,
            delta,
            wait,
            self.sources,
        )


VERIFY_BAD = re.compile(r"invalid|missing|corrupt|checksum|error|unable", re.IGNORECASE)


WAL_RANGE = re.compile(r"archiveId: (\S+), wal start: ([0-9A-F]{24}), wal stop: ([0-9A-F]{24})")


def wal_breaks(lines: list[str]) -> list[str]:
    """verify prints one "wal start/stop" range per unbroken run of an archive's WAL on one
    timeline: a second range on the same timeline means segments are missing between."""
    seen: dict[tuple[str, str], str] = {}
    out = []
    for line in lines:
        match = WAL_RANGE.search(line)
        if match is None:
            continue
        key = (match.group(1), match.group(2)[:8])
        if key in seen:
            out.append(
                f"WAL missing between {seen[key]} and {match.group(2)}"
                f" (archive {key[0]}): {line.strip()}"
            )
        seen[key] = match.group(3)
    return out


def node_options(node: Node, index: int) -> list[str]:
    return [
        f"--pg{index}-path={node.datadir}",
        f"--pg{index}-port={node.host.server_port(node.name, node.port)}",
        f"--pg{index}-socket-path={node.sockdir}",
    ]


def target_options(target: RecoveryTarget) -> list[str]:
    """``restore`` options for a recovery target (``--type=default``: the end of the WAL)."""
    timeline = [f"--target-timeline={target.timeline}"]
    if target.kind == "latest":
        return [*timeline, "--type=default"]
    options = [f"--type={KIND_TYPES[target.kind]}", f"--target-action={target.action}"]
    if target.kind == "immediate":
        return options  # pgBackRest takes no timeline with an immediate target
    options += [*timeline, f"--target={target.value}"]
    if not target.inclusive:
        options.append("--target-exclusive")
    return options


def parse_backup(raw: Mapping[str, Any]) -> ToolBackup:
    archive = raw.get("archive") or {}
    lsn = raw.get("lsn") or {}
    stamp = raw.get("timestamp") or {}
    info = raw.get("info") or {}
    kind = str(raw.get("type", "full"))
    return ToolBackup(
        id=str(raw["label"]),
        kind=kind,
        tool="pgbackrest",
        started=float(stamp.get("start") or 0),
        stopped=float(stamp.get("stop") or 0),
        start_lsn=str(lsn.get("start") or ""),
        stop_lsn=str(lsn.get("stop") or ""),
        start_wal=str(archive.get("start") or ""),
        stop_wal=str(archive.get("stop") or ""),
        size=int(info.get("size") or 0),
        prior=raw.get("prior"),
        extra={"repository_size": str((info.get("repository") or {}).get("size", ""))},
    )
