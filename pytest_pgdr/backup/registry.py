"""The one place that picks a backup tool by name; members are imported only when chosen."""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pytest_pgdr.backup.base import BackupTool, ToolUnavailable
from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.hosts.base import require_local_files

if TYPE_CHECKING:
    from pytest_pgdr.cluster.topology import Topology

# name -> (module under pytest_pgdr.backup, class, the program that must be installed)
MEMBERS: dict[str, tuple[str, str, str | None]] = {
    "plain": ("plain", "Plain", None),
    "pgbackrest": ("pgbackrest", "PgBackRest", "pgbackrest"),
    "barman": ("barman", "Barman", "barman"),
    "walg": ("walg", "WalG", None),
}
TOOL_NAMES = tuple(MEMBERS)
WALG_ENV = "PGDR_WALG"  # the path of a user-supplied wal-g binary
WALG_OPTION = "--pgdr-walg"


def check_name(name: str) -> str:
    if name not in MEMBERS:
        raise ConfigError(
            f"Unknown backup tool {name!r}",
            f"valid tools: {', '.join(TOOL_NAMES)}",
            "Pick one of them (or 'installed' for every one found on this machine)",
        )
    return name


def walg_binary() -> str | None:
    """The wal-g binary named by ``PGDR_WALG`` (the plugin maps ``--pgdr-walg`` onto it)."""
    path = os.environ.get(WALG_ENV, "")
    return path if path and os.access(path, os.X_OK) else None


def is_installed(name: str) -> bool:
    program = MEMBERS[check_name(name)][2]
    if name == "walg":
        return walg_binary() is not None
    return program is None or shutil.which(program) is not None


def installed_tools() -> tuple[str, ...]:
    """The tools that can run here (``plain`` always)."""
    return tuple(name for name in TOOL_NAMES if is_installed(name))


def resolve(spec: str) -> tuple[str, ...]:
    """Tool names from a comma-separated setting; ``installed`` (the default) or ``all``."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if part in ("", "installed"):
            names += installed_tools()
        elif part == "all":
            names += TOOL_NAMES
        else:
            names.append(check_name(part))
    return tuple(dict.fromkeys(names))


def backup_tool(
    name: str, topology: Topology, programs: Mapping[str, str | None] | None = None
) -> BackupTool:
    """The member called ``name`` for ``topology``; :class:`ToolUnavailable` (a skip) when
    its program is not installed here. ``programs`` maps tool names to the binaries to use
    (e.g. ``{"walg": "/opt/wal-g"}`` from ``--pgdr-walg``); otherwise PATH or PGDR_WALG."""
    module, cls, _ = MEMBERS[check_name(name)]
    require_local_files(topology.host, f"The {name} backup tool")
    factory: Callable[..., BackupTool] = getattr(
        importlib.import_module(f"pytest_pgdr.backup.{module}"), cls
    )
    program = (programs or {}).get(name)
    return factory(topology, program) if program else factory(topology)


__all__ = ["TOOL_NAMES", "ToolUnavailable", "backup_tool", "installed_tools", "resolve"]
