"""The image's ``postgres`` account: a uid and gid that no account on this machine has.

Containers run PostgreSQL as the image's postgres uid:gid, and the files they share with this
machine (data directories, the password file, the trusted sockets, cached templates) belong to
that uid here. Debian's packages give postgres a dynamic system uid (100 or so), which on this
machine may well be another account (``messagebus``...): that account would own those files and
could connect as superuser without a password. So the image's postgres account is moved to a
dedicated uid/gid, chosen at build time among those unknown to this machine.
"""

from __future__ import annotations

import grp
import os
from pathlib import Path

from pytest_pgdr.hosts.osuser import host_account

FIRST_ID = 61432  # Debian leaves 60000-64999 to accounts created on demand: rarely taken
ID_RANGE = 500


def _host_group(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def _ids_in(path: Path, column: int) -> set[int]:
    ids = set()
    for line in path.read_text().splitlines() if path.exists() else []:
        fields = line.split(":")
        if len(fields) > column and fields[column].isdigit():
            ids.add(int(fields[column]))
    return ids


def choose_ids(rootfs: Path) -> tuple[int, int]:
    """A uid and gid (equal) unused on this machine and in the image; raises LookupError."""
    taken = _ids_in(rootfs / "etc/passwd", 2) | _ids_in(rootfs / "etc/group", 2)
    for candidate in range(FIRST_ID, FIRST_ID + ID_RANGE):
        if candidate in taken or host_account(candidate) or _host_group(candidate):
            continue
        return candidate, candidate
    raise LookupError(f"no free uid/gid in {FIRST_ID}..{FIRST_ID + ID_RANGE - 1}")


def _rewrite(path: Path, name: str, column: int, value: int) -> int:
    """Set ``column`` of ``name``'s line in a passwd-style file; returns the old value."""
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        fields = line.rstrip("\n").split(":")
        if fields[0] == name and len(fields) > column:
            old = int(fields[column])
            fields[column] = str(value)
            lines[i] = ":".join(fields) + "\n"
            path.write_text("".join(lines))
            return old
    raise LookupError(f"no {name!r} in {path}")


def move_postgres_account(rootfs: Path, uid: int, gid: int) -> tuple[int, int]:
    """Give the image's postgres user and group ``uid``/``gid``, and every file they owned.

    Returns the old (uid, gid)."""
    old_uid = _rewrite(rootfs / "etc/passwd", "postgres", 2, uid)
    _rewrite(rootfs / "etc/passwd", "postgres", 3, gid)
    old_gid = _rewrite(rootfs / "etc/group", "postgres", 2, gid)
    for dirpath, dirnames, filenames in os.walk(rootfs):
        dirnames[:] = [d for d in dirnames if not os.path.ismount(os.path.join(dirpath, d))]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            new_uid = uid if info.st_uid == old_uid else -1
            new_gid = gid if info.st_gid == old_gid else -1
            if new_uid != -1 or new_gid != -1:
                os.lchown(path, new_uid, new_gid)
    return old_uid, old_gid
