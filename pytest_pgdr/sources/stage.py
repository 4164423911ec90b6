"""Staging for hosts that cannot see this machine's files (containers): the source is copied
into the sandbox first (a copy: the source is only read), and the spec points at the copy."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.sources.base import SourceSpec, run_as_server

if TYPE_CHECKING:
    from pytest_pgdr.hosts.base import Host


def host_sees(host: Host, paths: list[Path]) -> bool:
    """Whether programs run on ``host`` find every one of ``paths`` where it is here."""
    proc = run_as_server(
        host,
        ["sh", "-c", 'for p; do [ -e "$p" ] || exit 1; done', "sh", *map(str, paths)],
        "looking for the source",
    )
    return proc.returncode == 0


def stage(spec: SourceSpec, paths: list[Path], into: Path, host: Host) -> SourceSpec:
    """Copy ``paths`` under ``into`` (owned by the server user); the spec of the copy."""
    host.make_dir(into)
    moved: dict[str, str] = {}
    for number, path in enumerate(paths):
        dest = into / f"{number}_{path.name}"
        if path.is_dir():
            shutil.copytree(path, dest, symlinks=True)
        else:
            shutil.copy2(path, dest)
        _chown(dest, host.user.uid, host.user.gid)
        moved[str(path)] = str(dest)
    options = {k: moved.get(v, v) for k, v in spec.options.items()}
    return replace(spec, path=moved.get(spec.path, spec.path), options=options)


def _chown(root: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.chown(root, uid, gid)
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(base, name), uid, gid, follow_symlinks=False)
