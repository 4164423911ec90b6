"""A base backup (``pg_basebackup``: plain directory or tar, compressed or not) and, with
``?wal=DIR``, the WAL archive it is replayed from, read in place by ``restore_command``.

Without a WAL archive the backup must carry its own WAL (``-X fetch`` or ``-X stream``):
the sandbox then only reaches the end of the backup. The major is ``PG_VERSION``; the
identity is ``backup_label`` and ``backup_manifest`` (LSNs, times, label).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.sources.base import (
    BackupIdentity,
    Restored,
    SourceSpec,
    bad_backup,
    check_readable,
    run_as_server,
    tree_size,
)
from pytest_pgdr.sources.progress import run_with_progress
from pytest_pgdr.sources.registry import check_options
from pytest_pgdr.sources.sandbox import (
    archived_segments,
    bootstrap_superuser,
    check_wal_chain,
    prepare_datadir,
    recover,
)

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.recovery import RecoveryTarget
    from pytest_pgdr.cluster.topology import Topology

TARS = ("base.tar", "base.tar.gz", "base.tar.lz4", "base.tar.zst", "base.tgz")
LABEL_FIELDS = {
    "label": r"LABEL: (.*)",
    "started": r"START TIME: (.*)",
    "start_lsn": r"START WAL LOCATION: (\S+)",
    "timeline": r"START TIMELINE: (\d+)",
}


def restore_command(wal: Path) -> str:
    """Read a segment from the archive directory, plain or gzip-compressed, never writing it."""
    d = shlex.quote(str(wal))
    return (
        f"if [ -f {d}/%f ]; then cp {d}/%f %p; "
        f"elif [ -f {d}/%f.gz ]; then gzip -dc {d}/%f.gz > %p; else exit 1; fi"
    )


class BaseBackup:
    """``basebackup:/backups/base?wal=/backups/wal``."""

    exact_major = True
    OPTIONS = ("wal",)

    def __init__(self, spec: SourceSpec) -> None:
        check_options(spec, self.OPTIONS)
        self.spec = spec
        self.path = Path(spec.path)
        self.wal = Path(spec.option("wal")) if spec.option("wal") else None
        self.pitr = self.wal is not None
        self._files: dict[str, str] | None = None

    def paths(self) -> list[Path]:
        return [self.path, *([self.wal] if self.wal else [])]

    def tarball(self) -> Path | None:
        found = [self.path / n for n in TARS if (self.path / n).is_file()]
        return found[0] if found else None

    def small_files(self) -> dict[str, str]:
        """PG_VERSION and backup_label, from the directory or the tar (read in passing)."""
        if self._files is None:
            if not self.path.is_dir():
                raise bad_backup(self.spec, "is not a directory", f"nothing at {self.path}")
            tar = self.tarball()
            wanted = ("PG_VERSION", "backup_label")
            if tar is None:
                self._files = {
                    n: (self.path / n).read_text(errors="replace")
                    for n in wanted
                    if (self.path / n).is_file()
                }
            else:
                self._files = _from_tar(self.spec, tar, wanted)
        return self._files

    def major(self) -> int:
        text = self.spec.option("major") or self.small_files().get("PG_VERSION", "")
        match = re.match(r"\s*(\d+)", text)
        if match is None:
            raise bad_backup(
                self.spec,
                "is not a base backup: it has no PG_VERSION",
                f"neither {self.path}/PG_VERSION nor a base.tar holding one",
            )
        return int(match.group(1))

    def manifest(self) -> dict[str, object]:
        path = self.path / "backup_manifest"
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def identity(self) -> BackupIdentity:
        label = self.small_files().get("backup_label", "")
        fields = {k: _first(rx, label) for k, rx in LABEL_FIELDS.items()}
        ranges = self.manifest().get("WAL-Ranges") or [{}]
        last = ranges[-1] if isinstance(ranges, list) and ranges else {}
        return BackupIdentity(
            kind="pg_basebackup " + ("tar" if self.tarball() else "plain"),
            label=fields["label"] or self.path.name,
            major=self.major(),
            tool_version=f"PostgreSQL {self.major()} (pg_basebackup)",
            started=fields["started"],
            stopped=_mtime(self.path / "backup_manifest"),
            start_lsn=fields["start_lsn"],
            stop_lsn=str(last.get("End-LSN", "")) if isinstance(last, dict) else "",
            size=tree_size([self.path]),
            extra={"timeline": fields["timeline"], "wal archive": str(self.wal or "")},
        )

    def restore(self, topology: Topology, target: RecoveryTarget, stopwatch: Stopwatch) -> Restored:
        identity = self.identity()
        node = topology.new_node("sandbox")
        check_readable(node.host, self.spec, self.paths())
        segments = archived_segments([p.name for p in self.wal.iterdir()]) if self.wal else []
        first = _first(r"\(file ([0-9A-F]{24})\)", self.small_files().get("backup_label", ""))
        if self.pitr:
            own = _own_wal_end(self.path, identity.stop_lsn, identity.extra["timeline"])
            check_wal_chain(self.spec, identity.label, segments, first, own)
        stopwatch.lap("check backup")
        self._lay_files(node, identity.size)
        prepare_datadir(node)
        stopwatch.lap("restore files")
        superuser = bootstrap_superuser(node.datadir)
        if self.wal is not None:
            node.conf["restore_command"] = restore_command(self.wal)
            replayed = recover(node, target, stopwatch, superuser, segments)
        else:  # the backup's own pg_wal: archive recovery falls back to it
            node.conf["restore_command"] = "false"
            replayed = recover(node, _end_of_backup(target), stopwatch, superuser, [])
        databases = _databases(node)
        identity.databases = databases
        return Restored(node, identity, databases, identity.size, self.pitr, replayed)

    def _lay_files(self, node: Node, size: int) -> None:
        node.host.make_dir(node.datadir)
        tar = self.tarball()
        if tar is None:
            argv = ["cp", "-R", f"{self.path}/.", str(node.datadir)]
        else:
            wal_tar = next(self.path.glob("pg_wal.tar*"), None)
            steps = [f"tar -xf {shlex.quote(str(tar))} -C {shlex.quote(str(node.datadir))}"]
            if wal_tar is not None:
                into = shlex.quote(str(node.datadir / "pg_wal"))
                steps.append(f"tar -xf {shlex.quote(str(wal_tar))} -C {into}")
            argv = ["sh", "-c", " && ".join(steps)]
        what = f"restoring {self.spec.name} (base backup files)"
        proc = run_with_progress(
            lambda: run_as_server(node.host, argv, what),
            what,
            lambda: float(tree_size([node.datadir])),
            size if tar is None else None,
        )
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).splitlines()
            raise bad_backup(
                self.spec, "could not be unpacked", f"{argv[0]} says: {lines[0]}", lines[-15:]
            )


def _from_tar(spec: SourceSpec, tar: Path, wanted: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        with tarfile.open(tar, "r|*") as stream:
            for member in stream:
                name = member.name.removeprefix("./")
                if name in wanted:
                    handle = stream.extractfile(member)
                    found[name] = handle.read().decode(errors="replace") if handle else ""
                if len(found) == len(wanted):
                    break
    except (tarfile.TarError, OSError, EOFError):
        proc = subprocess.run(
            ["tar", "-xOf", str(tar), *wanted], capture_output=True, text=True, check=False
        )
        if not proc.stdout:
            raise bad_backup(spec, "cannot be read", f"tar says: {proc.stderr.strip()}") from None
        found["PG_VERSION"] = proc.stdout.splitlines()[0]
        found["backup_label"] = proc.stdout
    return found


def _own_wal_end(path: Path, stop_lsn: str, timeline: str) -> str:
    """The last segment the backup carries itself (pg_wal in it, or pg_wal.tar), else ''."""
    wal = path / "pg_wal"
    carries = (wal.is_dir() and any(wal.iterdir())) or next(path.glob("pg_wal.tar*"), None)
    if not carries or not re.fullmatch(r"[0-9A-Fa-f]+/[0-9A-Fa-f]+", stop_lsn):
        return ""
    high, low = (int(part, 16) for part in stop_lsn.split("/"))
    return f"{int(timeline or 1):08X}{high:08X}{low >> 24:08X}"


def _end_of_backup(target: RecoveryTarget) -> RecoveryTarget:
    """Without an archive, the backup's own WAL: consistency, then promote."""
    from pytest_pgdr.cluster.recovery import RecoveryTarget

    return RecoveryTarget.immediate(action=target.action)


def _databases(node: Node) -> tuple[str, ...]:
    rows = node.query(
        "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
    )
    return tuple(str(name) for (name,) in rows)


def _first(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    return match.group(1).strip() if match else ""


def _mtime(path: Path) -> str:
    import datetime as dt

    if not path.exists():
        return ""
    stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return stamp.isoformat(timespec="seconds")
