"""Backup tools behind one small interface (:class:`BackupTool`), chosen by name in
:func:`backup_tool`: ``plain`` (pg_basebackup and the topology's archive), ``pgbackrest``,
``barman`` and ``walg`` (a user-supplied binary).

Nothing outside this package asks which member it has: drills check ``tool.kinds`` and
``tool.capabilities``.
"""

from pytest_pgdr.backup.base import (
    BackupTool,
    BackupToolError,
    RepoInfo,
    ToolBackup,
    ToolRefusesVersion,
    ToolUnavailable,
)
from pytest_pgdr.backup.health import Health
from pytest_pgdr.backup.registry import TOOL_NAMES, backup_tool, installed_tools, resolve

__all__ = [
    "TOOL_NAMES",
    "BackupTool",
    "BackupToolError",
    "Health",
    "RepoInfo",
    "ToolBackup",
    "ToolRefusesVersion",
    "ToolUnavailable",
    "backup_tool",
    "installed_tools",
    "resolve",
]
