"""The archive: WAL segments and base backups, kept apart from every node's data directory."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_pgdr.hosts.base import Host
    from pytest_pgdr.hosts.files import Files

SEGMENT = re.compile(r"^[0-9A-F]{24}$")
HISTORY = re.compile(r"^[0-9A-F]{8}\.history$")


@dataclass
class Backup:
    """A base backup in the archive."""

    path: Path
    label: str
    source: str
    fmt: str  # "plain" or "tar"
    compressed: bool = False
    system_identifier: int = 0
    timeline: int = 1
    start_lsn: str = ""
    stop_lsn: str = ""
    incremental_of: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def manifest(self) -> Path:
        return self.path / "backup_manifest"

    #: where the backup's files are (the topology's host); this machine's disk when None
    files: Files | None = field(default=None, repr=False, compare=False)

    def size_bytes(self) -> int:
        if self.files is not None:
            return self.files.tree_size(self.path)
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def to_json(self) -> str:
        data = {
            k: str(v) if isinstance(v, Path) else v
            for k, v in self.__dict__.items()
            if k != "files"
        }
        return json.dumps(data, sort_keys=True)


class Archive:
    """A directory with ``wal/`` (archived segments, history files) and ``backups/``."""

    def __init__(self, root: Path, host: Host) -> None:
        self.root = root
        self.host = host
        self.wal = root / "wal"
        self.backups = root / "backups"
        for path in (root, self.wal, self.backups):
            host.make_dir(path)

    def archive_command(self) -> str:
        """Copy a segment in; succeed if an identical copy is there, refuse a different one.

        The copy goes to a temporary name first, so a crash never leaves half a segment.
        """
        wal = shlex.quote(str(self.wal))
        return (
            f"if test -f {wal}/%f; then cmp -s %p {wal}/%f; "
            f"else cp %p {wal}/.%f.tmp && mv {wal}/.%f.tmp {wal}/%f; fi"
        )

    def restore_command(self) -> str:
        return f"cp {shlex.quote(str(self.wal))}/%f %p"

    def segments(self) -> list[str]:
        return sorted(n for n in self.host.file_sizes(self.wal) if SEGMENT.match(n))

    def history_files(self) -> list[str]:
        return sorted(n for n in self.host.file_sizes(self.wal) if HISTORY.match(n))

    def has(self, name: str) -> bool:
        return self.host.exists(self.wal / name)

    def segment_size(self, name: str) -> int:
        return self.host.file_sizes(self.wal).get(name, 0)

    def wal_bytes(self) -> int:
        return sum(self.host.file_sizes(self.wal).values())

    def new_backup_dir(self, label: str) -> Path:
        path = self.backups / label
        if self.host.exists(path):
            raise FileExistsError(f"a backup labelled {label!r} already exists in {self.backups}")
        return self.host.make_dir(path)
