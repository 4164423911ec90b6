"""The contract every backup tool meets, what it reports, and the errors it raises.

A member (``plain``, ``pgbackrest``, ``barman``, ``walg``) is chosen once by name in
:mod:`pytest_pgdr.backup.registry`; drills only ever talk to a :class:`BackupTool`.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pytest_pgdr.basics.errors import PgdrError, Unavailable, VersionSkip
from pytest_pgdr.basics.wait import DEFAULT_TIMEOUT, timeout_scale
from pytest_pgdr.cluster.lsn import segment_number

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.recovery import RecoveryTarget
    from pytest_pgdr.hosts.base import Host

KINDS = ("full", "diff", "incr")
DELTA = "delta"  # restore over an existing data directory, changed files only
STANDBY_BACKUP = "standby_backup"  # take a backup from a standby
CAPABILITIES = (DELTA, STANDBY_BACKUP)
SEGMENT = re.compile(r"^([0-9A-F]{24})")
WAL_SEGMENT_SIZE = 16 * 1024 * 1024  # what initdb gives unless told otherwise


class ToolUnavailable(Unavailable):
    """The tool is not installed here: a skip, or a failure in strict mode (CI)."""


class ToolRefusesVersion(VersionSkip):
    """The installed tool refuses this PostgreSQL: a skip, like a drill's version floor."""


class BackupToolError(PgdrError):
    """A backup tool failed, or found something wrong (its own messages are attached)."""


@dataclass(frozen=True)
class ToolBackup:
    """One backup as the tool reports it."""

    id: str
    kind: str  # full, diff or incr
    tool: str
    started: float = 0.0  # seconds since the epoch
    stopped: float = 0.0
    start_lsn: str = ""
    stop_lsn: str = ""
    start_wal: str = ""
    stop_wal: str = ""
    size: int = 0  # bytes of the database the backup holds
    prior: str | None = None  # the backup a diff/incr is based on
    status: str = "ok"
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RepoInfo:
    """What a tool's info says about its repository: backups and archived WAL."""

    tool: str
    backups: tuple[ToolBackup, ...]
    wal: tuple[str, ...]  # archived segment names, sorted (timeline history files aside)
    segment_size: int = WAL_SEGMENT_SIZE

    def newest(self) -> ToolBackup | None:
        done = [b for b in self.backups if b.stopped]
        return max(done, key=lambda b: b.stopped) if done else None

    def newest_age(self, now: float | None = None) -> float | None:
        """Seconds since the newest backup finished (None without a backup)."""
        newest = self.newest()
        return None if newest is None else (now or time.time()) - newest.stopped

    def gaps(self) -> list[tuple[str, str]]:
        """Missing segments inside each timeline's archived range, as (first, last) names."""
        return wal_gaps(self.wal, self.segment_size)

    def gaps_after(self, backup: ToolBackup) -> list[tuple[str, str]]:
        """Gaps in the WAL a restore of ``backup`` needs (from its first segment on)."""
        first = backup.start_wal
        return [gap for gap in self.gaps() if not first or gap[1] >= first]


def wal_gaps(names: Sequence[str], segment_size: int = WAL_SEGMENT_SIZE) -> list[tuple[str, str]]:
    """(first missing, last missing) for each hole in each timeline's run of segments."""
    per_tli: dict[str, list[int]] = {}
    for name in names:
        per_tli.setdefault(name[:8], []).append(segment_number(name, segment_size))
    per_log = 0x1_0000_0000 // segment_size
    gaps = []
    for tli, numbers in sorted(per_tli.items()):
        numbers.sort()
        for low, high in zip(numbers, numbers[1:], strict=False):
            if high - low > 1:
                gaps.append((_name(tli, low + 1, per_log), _name(tli, high - 1, per_log)))
    return gaps


def _name(tli: str, number: int, per_log: int) -> str:
    return f"{tli}{number // per_log:08X}{number % per_log:08X}"


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def first_named(root: Path, pattern: str, segment: str) -> Path | None:
    """The file under ``root`` (matching ``pattern``) whose name starts with ``segment``."""
    found = sorted(p for p in root.glob(pattern) if p.name.startswith(segment))
    return found[0] if found else None


def segments_in(names: Sequence[str]) -> tuple[str, ...]:
    """The WAL segment names among file names (``.gz`` or ``-checksum`` suffixes dropped)."""
    out = {m.group(1) for m in map(SEGMENT.match, names) if m}
    return tuple(sorted(out))


class BackupTool(Protocol):
    """Take, list, verify, expire and restore backups of one topology's primary through a tool.

    ``attach(node)`` points a server's ``archive_command`` at the tool (and creates what the
    tool needs: a stanza, a server entry); every other call works on the tool's repository.
    """

    name: str
    kinds: tuple[str, ...]  # backup kinds it can take, "full" first
    capabilities: frozenset[str]  # of CAPABILITIES

    def version(self) -> str:
        """The tool's own version string."""

    def attach(self, node: Node) -> None:
        """Make ``node`` archive its WAL through the tool and check the tool accepts it."""

    def wal_settings(self, node: Node) -> dict[str, object]:
        """archive_command and restore_command for ``node`` through the tool."""

    def wait_archived(self, node: Node, timeout: float | None = None) -> str:
        """Switch WAL and wait until the tool holds every segment written so far."""

    def backup(self, node: Node, kind: str = "full", standby: Node | None = None) -> ToolBackup:
        """Take a backup of ``node`` (from ``standby`` when the tool can)."""

    def info(self) -> RepoInfo:
        """The backups and the archived WAL, from the tool's own info."""

    def verify(self, backup: ToolBackup | None = None) -> list[str]:
        """Check the repository (or one backup); :class:`BackupToolError` on a problem."""

    def expire(self, keep_full: int) -> list[str]:
        """Apply a retention of ``keep_full`` full backups; returns the ids removed."""

    def backup_files(self, backup: ToolBackup) -> list[Path]:
        """The files that hold ``backup`` in the repository (for audits and fault drills)."""

    def wal_path(self, segment: str) -> Path | None:
        """Where the repository keeps an archived WAL segment (None if it does not)."""

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
        """Restore ``backup`` (default: the newest) into a new node (or, with ``delta``, over a
        stopped node's data directory, changed files only) and recover it to ``target``."""

    def restore_files(
        self, backup: ToolBackup | None, target: RecoveryTarget, node: Node, delta: bool = False
    ) -> None:
        """Only the tool's own restore command: lay ``backup`` down as ``node``'s data
        directory, recovery settings included. No server is started."""


@dataclass
class Runner:
    """Runs one tool's commands as the server OS user; failures become one paragraph."""

    tool: str
    host: Host
    env: Mapping[str, str]
    log_dir: Path | None = None
    secrets_hint: str = ""
    calls: list[tuple[str, float]] = field(default_factory=list)

    def __call__(
        self,
        argv: Sequence[str | Path],
        what: str,
        check: bool = True,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        args = [str(a) for a in argv]
        limit = timeout if timeout is not None else 2 * DEFAULT_TIMEOUT * timeout_scale()
        started = time.monotonic()
        try:
            proc = self.host.run(args, {**self.env, **(env or {})}, input, limit)
        except subprocess.TimeoutExpired as exc:
            raise BackupToolError(
                f"{self.tool} did not finish {what} within {limit:.0f} s",
                f"command: {shlex.join(args)}",
                "Read the tool's log below; it may wait on a lock or a server",
                log_lines=self.log_tail(),
                log_name=f"{self.tool} log",
            ) from exc
        self.calls.append((what, time.monotonic() - started))
        if check and proc.returncode != 0:
            raise self.failure(what, args, proc)
        return proc

    def failure(
        self,
        what: str,
        args: Sequence[str],
        proc: subprocess.CompletedProcess[str],
        do: str = "",
    ) -> BackupToolError:
        lines = tool_lines(proc)
        return BackupToolError(
            f"{self.tool} failed {what} (exit code {proc.returncode})",
            f"{self.tool} says: {lines[0].strip() if lines else 'nothing'};"
            f" command: {shlex.join(args)}",
            do or "Read the tool's own messages below",
            log_lines=lines[-20:] or self.log_tail(),
            log_name=f"{self.tool} output",
        )

    def log_tail(self, count: int = 15) -> list[str]:
        if self.log_dir is None or not self.log_dir.is_dir():
            return []
        logs = sorted(self.log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
        if not logs:
            return []
        return logs[-1].read_text(errors="replace").splitlines()[-count:]


def tool_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a tool printed, errors first in importance (stderr, then stdout)."""
    text = (proc.stderr or "") + "\n" + (proc.stdout or "")
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [
        line
        for line in lines
        if re.search(r"ERROR|FATAL|PANIC|EXCEPTION|error|failed|FAILED|denied", line)
    ]
    return errors or lines
