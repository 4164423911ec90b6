"""The files of a topology: data directories, logs, the archive, backups.

Everything above the hosts reads and writes them through a :class:`Files`, never through
``pathlib`` or ``shutil``: on this machine they are local files (:class:`LocalFiles`); on a
Docker engine that does not share this machine's disk they live in volumes and go through the
engine (:class:`~pytest_pgdr.hosts.docker.volume.VolumeFiles`). Paths are the same everywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from pytest_pgdr.hosts.osuser import OsUser


class Files(Protocol):
    """A topology's file system, wherever it lives (paths mean the same to every server)."""

    def make_dir(self, path: Path, mode: int = 0o700) -> Path: ...

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None: ...

    def write_bytes(self, path: Path, data: bytes, offset: int | None = None) -> None:
        """The whole file, or ``data`` over the bytes at ``offset`` of an existing file."""

    def remove_file(self, path: Path) -> None: ...

    def read_bytes(self, path: Path, offset: int = 0, length: int = -1) -> bytes:
        """``FileNotFoundError`` when there is no such file."""

    def read_text(self, path: Path) -> str: ...

    def exists(self, path: Path) -> bool: ...

    def is_dir(self, path: Path) -> bool: ...

    def names(self, path: Path) -> list[str]:
        """The entries of a directory, sorted ([] when it does not exist)."""

    def file_sizes(self, path: Path) -> dict[str, int]:
        """The regular files directly in ``path`` and their sizes ({} when it does not exist)."""

    def tree_size(self, path: Path) -> int: ...

    def read_link(self, path: Path) -> Path | None:
        """Where a symbolic link points (None when ``path`` is not one)."""

    def make_link(self, target: Path, link: Path) -> None: ...

    def copy_tree(self, source: Path, target: Path) -> None:
        """``cp -a``: owners, modes and links kept; ``target`` must not exist."""

    def rename(self, source: Path, target: Path) -> None: ...

    def remove_tree(self, path: Path) -> None: ...

    def export_tree(self, path: Path, keep_to: Path) -> None:
        """Bring ``path`` to ``keep_to`` on this machine (a failed drill's files, kept)."""

    def locked(self, path: Path) -> contextlib.AbstractContextManager[None]:
        """Held by one process at a time (building a shared template)."""

    def cache_home(self, default: Path) -> Path:
        """Where templates are cached: ``default`` when the servers see this machine's disk."""


class LocalFiles:
    """Files on this machine, owned by the server user (the local host, and a container
    host whose engine bind-mounts its root at the same path)."""

    def __init__(self, user: OsUser) -> None:
        self.user = user

    def make_dir(self, path: Path, mode: int = 0o700) -> Path:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        os.chmod(path, mode)
        self.user.chown(path)
        return path

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.chmod(tmp, mode)
        self.user.chown(tmp)
        os.replace(tmp, path)

    def write_bytes(self, path: Path, data: bytes, offset: int | None = None) -> None:
        if offset is None:
            path.write_bytes(data)
            self.user.chown(path)
            return
        with open(path, "r+b") as fh:
            fh.seek(offset)
            fh.write(data)

    def remove_file(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def read_bytes(self, path: Path, offset: int = 0, length: int = -1) -> bytes:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    def read_text(self, path: Path) -> str:
        return path.read_text(errors="replace")

    def exists(self, path: Path) -> bool:
        return path.exists()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def names(self, path: Path) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def file_sizes(self, path: Path) -> dict[str, int]:
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return {}
        sizes = {}
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False):
                    sizes[entry.name] = entry.stat(follow_symlinks=False).st_size
        return sizes

    def tree_size(self, path: Path) -> int:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    def read_link(self, path: Path) -> Path | None:
        return Path(os.readlink(path)) if path.is_symlink() else None

    def make_link(self, target: Path, link: Path) -> None:
        link.unlink(missing_ok=True)
        os.symlink(target, link)
        self.user.chown(link)

    def copy_tree(self, source: Path, target: Path) -> None:
        proc = subprocess.run(
            ["cp", "-a", "--reflink=auto", str(source), str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise OSError(f"copying {source} to {target} failed: {proc.stderr.strip()}")

    def rename(self, source: Path, target: Path) -> None:
        os.rename(source, target)

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def export_tree(self, path: Path, keep_to: Path) -> None:
        keep_to.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(keep_to))

    @contextlib.contextmanager
    def locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def cache_home(self, default: Path) -> Path:
        return default


def this_machine() -> Files:
    """This machine's disk as this process sees it (logs of programs run here)."""
    return LocalFiles(OsUser("self", os.geteuid(), os.getegid()))


class FilesVia:
    """Every file operation passed on to ``self.files`` (a host that wraps another host)."""

    files: Files

    def make_dir(self, path: Path, mode: int = 0o700) -> Path:
        return self.files.make_dir(path, mode)

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        self.files.write_file(path, text, mode)

    def write_bytes(self, path: Path, data: bytes, offset: int | None = None) -> None:
        self.files.write_bytes(path, data, offset)

    def remove_file(self, path: Path) -> None:
        self.files.remove_file(path)

    def read_bytes(self, path: Path, offset: int = 0, length: int = -1) -> bytes:
        return self.files.read_bytes(path, offset, length)

    def read_text(self, path: Path) -> str:
        return self.files.read_text(path)

    def exists(self, path: Path) -> bool:
        return self.files.exists(path)

    def is_dir(self, path: Path) -> bool:
        return self.files.is_dir(path)

    def names(self, path: Path) -> list[str]:
        return self.files.names(path)

    def file_sizes(self, path: Path) -> dict[str, int]:
        return self.files.file_sizes(path)

    def tree_size(self, path: Path) -> int:
        return self.files.tree_size(path)

    def read_link(self, path: Path) -> Path | None:
        return self.files.read_link(path)

    def make_link(self, target: Path, link: Path) -> None:
        self.files.make_link(target, link)

    def copy_tree(self, source: Path, target: Path) -> None:
        self.files.copy_tree(source, target)

    def rename(self, source: Path, target: Path) -> None:
        self.files.rename(source, target)

    def remove_tree(self, path: Path) -> None:
        self.files.remove_tree(path)

    def export_tree(self, path: Path, keep_to: Path) -> None:
        self.files.export_tree(path, keep_to)

    def locked(self, path: Path) -> contextlib.AbstractContextManager[None]:
        return self.files.locked(path)

    def cache_home(self, default: Path) -> Path:
        return self.files.cache_home(default)
