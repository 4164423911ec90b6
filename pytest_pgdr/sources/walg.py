"""A WAL-G file store: ``walg:/backups/walg?backup=LATEST``, with the binary from --pgdr-walg
(WAL-G has no Debian or PyPI package). ``backup-list --json`` names the backup and its
PostgreSQL version; ``backup-fetch`` lays it down and ``wal-fetch`` replays WAL, both reading
the store through ``WALG_FILE_PREFIX`` only. Without a binary the source is unavailable (a
skip, or a failure in strict mode), never a crash.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pgdr.backup.base import segments_in
from pytest_pgdr.sources.base import (
    BackupIdentity,
    Restored,
    SourceSpec,
    SourceUnavailable,
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
    from pytest_pgdr.cluster.recovery import RecoveryTarget
    from pytest_pgdr.cluster.topology import Topology


class WalGSource:
    pitr = True
    exact_major = True
    OPTIONS = ("backup",)

    def __init__(self, spec: SourceSpec, binary: str | None = None) -> None:
        check_options(spec, self.OPTIONS)
        path = binary or os.environ.get("PGDR_WALG", "")
        if not path or not os.access(path, os.X_OK):
            raise SourceUnavailable(
                f"Backup source {spec.name!r} is a WAL-G store, but no wal-g binary was given",
                "WAL-G has no Debian or PyPI package, so pytest-pgdr cannot find one itself",
                "Pass the binary with --pgdr-walg /path/to/wal-g (or PGDR_WALG)",
            )
        self.spec = spec
        self.binary = path
        self.store = Path(spec.path)
        self._list: list[dict[str, Any]] | None = None

    def paths(self) -> list[Path]:
        return [self.store]

    def env(self) -> dict[str, str]:
        return {"WALG_FILE_PREFIX": str(self.store)}

    def backups(self) -> list[dict[str, Any]]:
        if self._list is None:
            proc = subprocess.run(
                [self.binary, "backup-list", "--json", "--detail"],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, **self.env()},
            )
            try:
                self._list = list(json.loads(proc.stdout or "[]"))
            except ValueError:
                raise bad_backup(self.spec, "cannot be listed", proc.stderr.strip()) from None
            if not self._list:
                raise bad_backup(self.spec, "holds no backup", proc.stderr.strip() or "empty")
        return self._list

    def backup(self) -> dict[str, Any]:
        wanted = self.spec.option("backup", "LATEST")
        found = self.backups()
        if wanted == "LATEST":
            return found[-1]
        for item in found:
            if item.get("backup_name") == wanted:
                return item
        raise bad_backup(self.spec, f"has no backup {wanted!r}", "see wal-g backup-list")

    def major(self) -> int:
        return int(self.backup().get("pg_version", 0)) // 10000

    def identity(self) -> BackupIdentity:
        item = self.backup()
        return BackupIdentity(
            kind="wal-g",
            label=str(item.get("backup_name", "")),
            major=self.major(),
            tool_version="wal-g",
            started=str(item.get("start_time", "")),
            stopped=str(item.get("finish_time", item.get("time", ""))),
            start_lsn=str(item.get("start_lsn", "")),
            stop_lsn=str(item.get("finish_lsn", "")),
            size=int(item.get("compressed_size", 0) or 0),
        )

    def restore(self, topology: Topology, target: RecoveryTarget, stopwatch: Stopwatch) -> Restored:
        identity = self.identity()
        node = topology.new_node("sandbox")
        check_readable(node.host, self.spec, self.paths())
        wal_root = self.store / "wal_005"
        names = [p.name for p in wal_root.iterdir()] if wal_root.is_dir() else []
        segments = list(segments_in(names))
        first = str(identity.label).removeprefix("base_")[:24]
        check_wal_chain(self.spec, identity.label, segments, first)
        stopwatch.lap("check backup")
        fetch = [self.binary, "backup-fetch", str(node.datadir), identity.label]
        proc = run_as_server(node.host, fetch, "wal-g backup-fetch", env=self.env())
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ["nothing"]
            raise bad_backup(self.spec, "did not restore", f"wal-g says: {lines[-1]}", lines[-15:])
        prepare_datadir(node)
        stopwatch.lap("restore files")
        env = f"WALG_FILE_PREFIX={shlex.quote(str(self.store))}"
        node.conf["restore_command"] = f"{env} {shlex.quote(self.binary)} wal-fetch %f %p"
        replayed = recover(node, target, stopwatch, bootstrap_superuser(node.datadir), segments)
        databases = tuple(
            str(n) for (n,) in node.query("SELECT datname FROM pg_database WHERE NOT datistemplate")
        )
        identity.databases = databases
        return Restored(node, identity, databases, identity.size, True, replayed)
