"""The contract every backup source meets: the team's real backup, read and never written.

A member (``dump``, ``dumpall``, ``basebackup``, ``pgbackrest``, ``barman``, ``walg``) is
chosen once by kind in :mod:`pytest_pgdr.sources.registry`; the nightly drill only ever talks
to a :class:`BackupSource`. A source reads its files as the server's OS user (so a backup the
server cannot read fails here, as it would in a real restore) and writes only into the sandbox
topology it restores into: locks, logs and configuration copies go there, never to the source.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_pgdr.basics.errors import PgdrError, Unavailable
from pytest_pgdr.basics.wait import DEFAULT_TIMEOUT, timeout_scale

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.recovery import RecoveryTarget
    from pytest_pgdr.cluster.topology import Topology
    from pytest_pgdr.hosts.base import Host


class SourceError(PgdrError):
    """Something is wrong with the backup itself: damaged, incomplete, unreadable, stale."""


class SourceUnavailable(Unavailable):
    """The tool a source needs is not installed: a skip, or a failure in strict mode."""


@dataclass(frozen=True)
class SourceSpec:
    """One source as the team named it: ``name = kind:path?key=value&key=value``."""

    name: str
    kind: str
    path: str
    options: Mapping[str, str] = field(default_factory=dict)

    def option(self, key: str, default: str = "") -> str:
        return self.options.get(key, default)

    def describe(self) -> str:
        extra = "&".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name} = {self.kind}:{self.path}" + (f"?{extra}" if extra else "")


@dataclass
class BackupIdentity:
    """Which backup a restore used, as its tool describes it (the evidence an auditor asks)."""

    kind: str
    label: str
    major: int
    server_version: str = ""  # the server the backup came from, when the backup says
    tool_version: str = ""  # the tool that made it, or the one reading it
    started: str = ""  # ISO times, as the backup states them
    stopped: str = ""
    start_lsn: str = ""
    stop_lsn: str = ""
    size: int = 0  # bytes of the backup as stored
    databases: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["databases"] = list(self.databases)
        return {k: v for k, v in out.items() if v not in ("", 0, [], {})}


@dataclass
class Restored:
    """A restored sandbox: the running node, the backup it came from, and what was replayed."""

    node: Node
    identity: BackupIdentity
    databases: tuple[str, ...]
    restored_bytes: int
    pitr: bool = False
    replayed_to: str = ""  # the LSN replay ended at (PITR sources)
    notes: list[str] = field(default_factory=list)


class BackupSource(Protocol):
    """A team's backup, restored read-only into a sandbox topology."""

    spec: SourceSpec
    pitr: bool  # WAL is replayed: recovery targets apply, the chain is checked to its end
    exact_major: bool  # a physical backup needs its own major; a dump, that one or newer

    def major(self) -> int:
        """The PostgreSQL major the backup needs, read from the backup (header, PG_VERSION,
        the tool's info)."""

    def identity(self) -> BackupIdentity:
        """The backup this source restores: label, LSNs, times, size, tool version."""

    def paths(self) -> list[Path]:
        """Every path the source reads (for the read-only proof and for staging)."""

    def restore(self, topology: Topology, target: RecoveryTarget, stopwatch: Stopwatch) -> Restored:
        """Restore into a new node of ``topology`` and bring it up, recovered to ``target``
        (PITR sources) or loaded (dumps); laps name each phase on ``stopwatch``."""


def run_as_server(
    host: Host,
    argv: Sequence[str | Path],
    what: str,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program as the server user; a time-out becomes a :class:`SourceError`."""
    args = [str(a) for a in argv]
    limit = timeout if timeout is not None else 20 * DEFAULT_TIMEOUT * timeout_scale()
    try:
        return host.run(args, dict(env or {}), input, limit)
    except subprocess.TimeoutExpired as exc:
        raise SourceError(
            f"{what} did not finish within {limit:.0f} s",
            f"command: {shlex.join(args)}",
            "A backup this large needs more time: raise --pgdr-timeout-scale",
        ) from exc


def check_readable(host: Host, spec: SourceSpec, paths: Sequence[Path]) -> None:
    """Every path exists and the server's OS user can read it (directories: and enter them,
    with every file inside readable); otherwise one paragraph naming the first culprit."""
    for path in paths:
        if not path.exists():
            raise SourceError(
                f"Backup source {spec.name!r}: {path} does not exist",
                f"the source is given as {spec.describe()}",
                "Check the path (is the backup volume mounted on this machine?)",
            )
    script = (
        'for p in "$@"; do if [ -d "$p" ]; then'
        ' f=$(find "$p" ! -readable -print -quit 2>&1); [ -z "$f" ] || { echo "$f"; exit 1; };'
        ' elif [ ! -r "$p" ]; then echo "$p"; exit 1; fi; done'
    )
    proc = run_as_server(host, ["sh", "-c", script, "sh", *map(str, paths)], "reading the source")
    if proc.returncode != 0:
        culprit = (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.stdout else "?"
        raise SourceError(
            f"Backup source {spec.name!r} cannot be read by the server's OS user"
            f" ({host.user.name})",
            f"{culprit} is not readable by that user, so a restore would fail the same way",
            "Give that user read access to the backup (e.g. a group with read permission), or"
            " run with --pgdr-os-user set to a user that can read it",
        )


def tree_size(paths: Sequence[Path]) -> int:
    """Bytes of every file under ``paths`` (a file counts itself)."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total


def bad_backup(spec: SourceSpec, what: str, why: str, lines: Sequence[str] = ()) -> SourceError:
    """The error for a backup that cannot be restored as it is."""
    return SourceError(
        f"Backup source {spec.name!r} ({spec.kind}:{spec.path}) {what}",
        why,
        "This backup would not restore in a real disaster either: fix the backup job and"
        " take a new one",
        log_lines=lines,
        log_name="tool output",
    )
