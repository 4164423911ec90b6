"""WAL-G, from a binary the user supplies (no Debian or PyPI package exists).

``PGDR_WALG`` (the plugin's ``--pgdr-walg``) names the binary. Storage is a directory under
the topology's run directory (``WALG_FILE_PREFIX``); settings live in a JSON file passed with
``--config``, so the server's archive_command and restore_command carry no environment and
no password (the server is reached over its private socket).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pgdr.backup.base import (
    BackupToolError,
    RepoInfo,
    Runner,
    ToolBackup,
    ToolUnavailable,
    files_under,
    first_named,
    segments_in,
    tool_lines,
)
from pytest_pgdr.backup.registry import WALG_ENV, WALG_OPTION, walg_binary
from pytest_pgdr.backup.restore import restore_through, wait_archived
from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.cluster.recovery import RecoveryTarget

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology


def missing() -> ToolUnavailable:
    return ToolUnavailable(
        "WAL-G is not available",
        f"no wal-g binary was named (option {WALG_OPTION}, environment {WALG_ENV});"
        " it has no Debian or PyPI package",
        f"Build or download wal-g and pass its path with {WALG_OPTION}=/path/to/wal-g"
        f" (or {WALG_ENV}=/path/to/wal-g) to run the WAL-G drills",
    )


class WalG:
    """The :class:`~pytest_pgdr.backup.base.BackupTool` for WAL-G with file storage."""

    name = "walg"
    kinds: tuple[str, ...] = ("full", "incr")  # incr: a delta backup (WALG_DELTA_MAX_STEPS)
    capabilities: frozenset[str] = frozenset()

    def __init__(self, topology: Topology, program: str | None = None) -> None:
        found = program or walg_binary()
        if found is None:
            raise missing()
        self.program = found
        self.topology = topology
        host = topology.host
        self.root = host.make_dir(topology.root / "walg")
        self.store = host.make_dir(self.root / "store")
        self.config = self.root / "walg.json"
        self.run = Runner("WAL-G", host, {}, None)
        self._version: str | None = None
        self.sources: dict[str, str] = {}  # backup id -> the node it was taken from

    def write_config(self, node: Node) -> None:
        settings = {
            "WALG_FILE_PREFIX": str(self.store),
            "WALG_COMPRESSION_METHOD": "lz4",
            "WALG_DELTA_MAX_STEPS": "6",
            "PGHOST": str(node.sockdir),
            "PGPORT": str(node.host.server_port(node.name, node.port)),
            "PGUSER": node.credentials.superuser,
            "PGDATABASE": "postgres",
        }
        self.topology.host.write_file(self.config, json.dumps(settings, indent=2), 0o640)

    def walg(self, *args: str) -> list[str]:
        return [self.program, f"--config={self.config}", *args]

    def version(self) -> str:
        if self._version is None:
            proc = self.run([self.program, "--version"], "to report its version")
            self._version = (proc.stdout or proc.stderr).strip().splitlines()[0]
        return self._version

    def wal_settings(self, node: Node) -> dict[str, object]:
        cmd = shlex.join(self.walg())
        return {
            "archive_mode": "on",
            "archive_command": f"{cmd} wal-push %p",
            "restore_command": f"{cmd} wal-fetch %f %p",
        }

    def attach(self, node: Node) -> None:
        self.write_config(node)
        node.conf.update(self.wal_settings(node))
        node.restart()
        self.wait_archived(node)

    def wait_archived(self, node: Node, timeout: float | None = None) -> str:
        return wait_archived(node, timeout)

    def backup(self, node: Node, kind: str = "full", standby: Node | None = None) -> ToolBackup:
        if kind not in self.kinds or standby is not None:
            raise ConfigError(f"WAL-G here takes {' or '.join(self.kinds)} backups of a primary")
        self.write_config(node)
        before = {b.id for b in self.info().backups}
        args = ["backup-push", str(node.datadir)] + (["--full"] if kind == "full" else [])
        self.run(self.walg(*args), f"a {kind} backup of {node.name}")
        made = [b for b in self.info().backups if b.id not in before]
        if not made:
            raise BackupToolError("WAL-G reported success but lists no new backup")
        self.sources[made[-1].id] = node.name
        return made[-1]

    def info(self) -> RepoInfo:
        proc = self.run(self.walg("backup-list", "--json", "--detail"), "backup-list", check=False)
        rows: list[dict[str, Any]] = json.loads(proc.stdout) if proc.stdout.strip() else []
        wal_dir = self.store / "wal_005"
        names = [p.name for p in wal_dir.iterdir()] if wal_dir.is_dir() else []
        return RepoInfo(self.name, tuple(map(parse_backup, rows)), segments_in(names))

    def backup_files(self, backup: ToolBackup) -> list[Path]:
        return files_under(self.store / "basebackups_005" / backup.id)

    def wal_path(self, segment: str) -> Path | None:
        return first_named(self.store / "wal_005", "*", segment)

    def verify(self, backup: ToolBackup | None = None) -> list[str]:
        """``wal-verify integrity timeline``: WAL gaps only (WAL-G has no backup checksum
        verify), so every restore drill still restores."""
        proc = self.run(
            self.walg("wal-verify", "integrity", "timeline", "--json"), "wal-verify", check=False
        )
        text = proc.stdout
        if proc.returncode != 0 or '"FAILURE"' in text or '"status":"FAILURE"' in text:
            lines = tool_lines(proc)
            raise BackupToolError(
                "WAL-G wal-verify found a problem",
                f"WAL-G says: {lines[0] if lines else text[:200]}",
                "Take a new full backup and find the missing WAL",
                log_lines=lines[-20:],
                log_name="wal-g output",
            )
        return text.splitlines()

    def expire(self, keep_full: int) -> list[str]:
        before = [b.id for b in self.info().backups]
        self.run(self.walg("delete", "retain", "FULL", str(keep_full), "--confirm"), "delete")
        after = {b.id for b in self.info().backups}
        return [bid for bid in before if bid not in after]

    def restore_files(
        self, backup: ToolBackup | None, target: RecoveryTarget, node: Node, delta: bool = False
    ) -> None:
        if delta:
            raise ConfigError("WAL-G backup-fetch has no delta restore here")
        bid = backup.id if backup else "LATEST"
        self.run(self.walg("backup-fetch", str(node.datadir), bid), f"backup-fetch {bid}")
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
            raise ConfigError("WAL-G has no delta restore here")
        return restore_through(
            "WAL-G",
            self.topology,
            self.info,
            self.restore_files,
            self.wal_settings,
            backup,
            target,
            name,
            settings,
            stopwatch,
            None,
            wait,
            self.sources,
        )


def parse_backup(row: Mapping[str, Any]) -> ToolBackup:
    def stamp(key: str) -> float:
        text = str(row.get(key) or "")
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else 0.0

    name = str(row.get("backup_name", ""))
    return ToolBackup(
        id=name,
        kind="incr" if "_D_" in name else "full",
        tool="walg",
        started=stamp("start_time"),
        stopped=stamp("finish_time"),
        start_lsn=str(row.get("start_lsn", "")),
        stop_lsn=str(row.get("finish_lsn", "")),
        start_wal=str(row.get("wal_file_name", "")),
        size=int(row.get("uncompressed_size") or 0),
    )
