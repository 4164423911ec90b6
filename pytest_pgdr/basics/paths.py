"""Places the user names (data, cache, report files), checked once at startup.

A place that cannot be used is one :class:`ConfigError` before any drill runs, rather than the
same ``FileNotFoundError`` in every drill or a report lost at the very end of a long run. The
check really creates (and removes) a probe, so a read-only file system is caught even as root.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pytest_pgdr.basics.errors import ConfigError


def output_path(text: str, source: str, bases: Mapping[str, Path]) -> Path:
    """Relative paths from an ini file are relative to the rootdir, others to the cwd."""
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    return bases["ini" if source.startswith("ini") else "cli"] / path


def check_dir(flag: str, path: Path) -> None:
    """``path`` is a directory we can create things in, or can be created in its parent."""
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{flag} {path} is not a directory",
            "it is a file, and the drills need a directory to put data directories in",
            f"Give {flag} a directory (it is created if only its last part is missing)",
        )
    where = path if path.exists() else path.parent
    if not where.is_dir():
        raise ConfigError(
            f"{flag} {path} cannot be created",
            f"its parent {where} does not exist or is not a directory",
            f"Create {where} first, or give {flag} a directory that exists",
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".pgdr-probe-", dir=where))
    except OSError as exc:
        raise ConfigError(
            f"{flag} {path} is not writable",
            f"creating a directory in {where} failed: {exc.strerror or exc}",
            f"Give {flag} a directory this user can write to",
        ) from None


def check_output_file(flag: str, path: Path) -> None:
    """``path`` can be written at the end of the run: not a directory, and its nearest
    existing ancestor is a directory we can create files in (missing parents are made)."""
    if path.is_dir():
        raise ConfigError(
            f"{flag} {path} is a directory",
            "the report is one file",
            f"Give {flag} a file name, e.g. {path / 'report'}",
        )
    where = path.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise ConfigError(
            f"{flag} {path} cannot be written",
            f"{where} is a file, so no directory can be made under it",
            f"Give {flag} a path under a directory",
        )
    try:
        handle, probe = tempfile.mkstemp(prefix=".pgdr-probe-", dir=where)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"{flag} {path} cannot be written",
            f"creating a file in {where} failed: {exc.strerror or exc}",
            f"Give {flag} a path this user can write to",
        ) from None


def write_private(path: Path, text: str) -> None:
    """Write a file only this process's user can read (0600 from its first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
