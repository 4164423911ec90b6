"""The OS user that runs PostgreSQL servers and the tools that touch their data directories.

PostgreSQL refuses to run as root. When the harness itself runs as root, servers run as an
unprivileged user (``postgres`` if it exists, else ``nobody``, or the one configured).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_pgdr.basics.errors import OsUserError

AUTO_CANDIDATES = ("postgres", "nobody")


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    def popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``subprocess.Popen`` that run the child as this user."""
        if self.is_current:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if not self.is_current:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def chown_tree(self, root: Path) -> None:
        if self.is_current:
            return
        self.chown(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), self.uid, self.gid, follow_symlinks=False)


def _lookup(name: str) -> OsUser:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise OsUserError(
            f"The OS user {name!r} configured to run PostgreSQL does not exist",
            "PostgreSQL refuses to run as root, so the servers need an unprivileged user",
            "Set --pgdr-os-user / pgdr_os_user to an existing user, or to 'auto'",
        ) from None
    if entry.pw_uid == 0:
        raise OsUserError(
            f"The OS user {name!r} is root",
            "PostgreSQL refuses to run as root",
            "Choose an unprivileged user with --pgdr-os-user, or 'auto'",
        )
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def resolve_os_user(setting: str = "auto") -> OsUser:
    """The user servers run as: the current one unless we are root."""
    if os.geteuid() != 0:
        if setting not in ("auto", "", pwd.getpwuid(os.geteuid()).pw_name):
            raise OsUserError(
                f"Cannot run PostgreSQL as {setting!r} without root",
                "switching users needs root privileges",
                "Leave --pgdr-os-user at 'auto' when pytest does not run as root",
            )
        entry = pwd.getpwuid(os.geteuid())
        return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if setting not in ("auto", ""):
        return _lookup(setting)
    for name in AUTO_CANDIDATES:
        try:
            return _lookup(name)
        except OsUserError:
            continue
    raise OsUserError(
        "No unprivileged OS user was found to run PostgreSQL",
        f"pytest runs as root and none of {', '.join(AUTO_CANDIDATES)} exists",
        "Create one (e.g. 'useradd postgres') or name one with --pgdr-os-user",
    )


def host_account(uid: int) -> str | None:
    """The name of this machine's account with ``uid``, or None."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None
