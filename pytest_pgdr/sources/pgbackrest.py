"""A pgBackRest repository and stanza: ``pgbackrest:/var/lib/pgbackrest?stanza=main``.

pgBackRest reads the repository and writes only where it is told: the sandbox gets its own
``pgbackrest.conf`` whose lock, log and spool paths are in the sandbox, so nothing in the
repository is written, locked or expired. The backup (``?set=LABEL``, default the newest) and
the major come from ``pgbackrest info``; WAL is replayed with ``archive-get`` from the same
repository, its chain checked for gaps first. pgBackRest 2.45 (Debian) refuses PostgreSQL 18.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pgdr.backup.base import segments_in
from pytest_pgdr.sources.base import (
    BackupIdentity,
    Restored,
    SourceSpec,
    bad_backup,
    check_readable,
    run_as_server,
)
from pytest_pgdr.sources.registry import check_options
from pytest_pgdr.sources.sandbox import (
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


def _iso(epoch: object) -> str:
    if not isinstance(epoch, int | float) or not epoch:
        return ""
    return dt.datetime.fromtimestamp(float(epoch), dt.UTC).isoformat(timespec="seconds")


class PgBackRestSource:
    pitr = True
    exact_major = True
    OPTIONS = ("stanza", "set")

    def __init__(self, spec: SourceSpec) -> None:
        check_options(spec, self.OPTIONS)
        self.spec = spec
        self.repo = Path(spec.path)
        self.stanza = spec.option("stanza", "main")
        self._info: dict[str, Any] | None = None

    def paths(self) -> list[Path]:
        return [self.repo]

    def _common(self, lock_dir: Path) -> list[str]:
        return [
            "--no-config",
            f"--repo1-path={self.repo}",
            f"--lock-path={lock_dir / 'lock'}",
            f"--log-path={lock_dir / 'log'}",
            "--log-level-file=off",
            "--log-level-console=warn",
            f"--stanza={self.stanza}",
        ]

    def info(self) -> dict[str, Any]:
        if self._info is None:
            with tempfile.TemporaryDirectory(prefix="pgdr-pgbackrest-") as scratch:
                argv = ["pgbackrest", *self._common(Path(scratch)), "--output=json", "info"]
                proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            try:
                stanzas = json.loads(proc.stdout)
            except ValueError:
                raise bad_backup(
                    self.spec, "cannot be read by pgbackrest info", proc.stderr.strip()
                ) from None
            found = stanzas[0] if stanzas else {}
            status = found.get("status", {})
            if status.get("code", 1) != 0 or not found.get("backup"):
                raise bad_backup(
                    self.spec,
                    f"has no usable backup in stanza {self.stanza!r}",
                    f"pgbackrest info says: {status.get('message', 'nothing')}",
                )
            self._info = found
        return self._info

    def backup(self) -> dict[str, Any]:
        wanted = self.spec.option("set")
        backups: list[dict[str, Any]] = self.info()["backup"]
        if not wanted:
            return backups[-1]
        for item in backups:
            if item.get("label") == wanted:
                return item
        labels = ", ".join(str(b.get("label")) for b in backups)
        raise bad_backup(self.spec, f"has no backup set {wanted!r}", f"it holds: {labels}")

    def major(self) -> int:
        db_id = self.backup().get("database", {}).get("id", 1)
        for db in self.info().get("db", []):
            if db.get("id") == db_id:
                return int(str(db.get("version", "0")).split(".")[0])
        raise bad_backup(self.spec, "does not say which PostgreSQL it holds", "no db entry")

    def identity(self) -> BackupIdentity:
        item = self.backup()
        stamps, lsn = item.get("timestamp", {}), item.get("lsn", {})
        size = item.get("info", {}).get("repository", {}).get("size", 0)
        return BackupIdentity(
            kind=f"pgbackrest {item.get('type', '')}",
            label=str(item.get("label", "")),
            major=self.major(),
            tool_version=f"pgBackRest {item.get('backrest', {}).get('version', '?')}",
            started=_iso(stamps.get("start")),
            stopped=_iso(stamps.get("stop")),
            start_lsn=str(lsn.get("start", "")),
            stop_lsn=str(lsn.get("stop", "")),
            size=int(size or 0),
            extra={
                "stanza": self.stanza,
                "database size": str(item.get("info", {}).get("size", "")),
                "prior": str(item.get("prior") or ""),
            },
        )

    def restore(self, topology: Topology, target: RecoveryTarget, stopwatch: Stopwatch) -> Restored:
        identity = self.identity()
        item = self.backup()
        node = topology.new_node("sandbox")
        check_readable(node.host, self.spec, self.paths())
        segments = self._segments()
        first = str(item.get("archive", {}).get("start", ""))
        check_wal_chain(self.spec, identity.label, segments, first)
        stopwatch.lap("check backup")
        work = node.host.make_dir(topology.root / "pgbackrest")
        common = self._common(work)
        node.host.make_dir(node.datadir)
        argv = ["pgbackrest", *common, f"--pg1-path={node.datadir}", f"--set={identity.label}"]
        proc = run_as_server(node.host, [*argv, "restore"], "pgbackrest restore")
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise bad_backup(
                self.spec, "did not restore", f"pgbackrest restore says: {lines[0]}", lines[-15:]
            )
        prepare_datadir(node)
        stopwatch.lap("restore files")
        get = shlex.join(["pgbackrest", *common, f"--pg1-path={node.datadir}", "archive-get"])
        node.conf["restore_command"] = f'{get} %f "%p"'
        replayed = recover(node, target, stopwatch, bootstrap_superuser(node.datadir), segments)
        databases = _databases(node)
        identity.databases = databases
        size = int(item.get("info", {}).get("size", 0) or 0)
        return Restored(node, identity, databases, size, True, replayed)

    def _segments(self) -> list[str]:
        root = self.repo / "archive" / self.stanza
        names = [p.name for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
        return list(segments_in(names))


def _databases(node: Node) -> tuple[str, ...]:
    rows = node.query(
        "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
    )
    return tuple(str(name) for (name,) in rows)
