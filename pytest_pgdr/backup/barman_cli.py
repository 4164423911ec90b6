"""Barman's command line as the harness speaks it: recover options for a recovery target,
the backup id in ``barman backup``'s output, and its JSON (``-f json``) parsed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_pgdr.backup.base import ToolBackup, ToolUnavailable
from pytest_pgdr.cluster.recovery import RecoveryTarget

PROGRAM = "barman"
TARGET_FLAGS = {"xid": "--target-xid", "time": "--target-time", "name": "--target-name"}
TARGET_FLAGS["lsn"] = "--target-lsn"
BACKUP_DIR = re.compile(r"Starting backup using \S+ method for server \S+ in \S+/(\w+)\s*$", re.M)


def missing() -> ToolUnavailable:
    return ToolUnavailable(
        "Barman is not installed",
        f"no {PROGRAM} program on PATH",
        "Install it (Debian: apt-get install barman barman-cli) to run the Barman drills",
    )


def target_options(target: RecoveryTarget) -> list[str]:
    """``barman recover`` options. Without a target (``latest``) and on the backup's own
    timeline Barman copies every WAL segment into pg_wal and the server crash-recovers to
    its end, staying on that timeline (Barman's choice: no recovery.signal, no promotion).
    A later timeline (after a failover) makes it an archive recovery that follows it."""
    options: list[str] = []
    if target.kind == "immediate":
        options = ["--target-immediate"]
    elif target.kind != "latest":
        options = [TARGET_FLAGS[target.kind], target.value]
        if not target.inclusive:
            options.append("--exclusive")
    options += ["--target-tli", target.timeline]
    if target.kind != "latest":
        options += ["--target-action", target.action]
    return options


def parse_backup(bid: str, row: Mapping[str, Any], show: Mapping[str, Any]) -> ToolBackup:
    base = show.get("base_backup_information") or {}
    return ToolBackup(
        id=bid,
        kind="full",
        tool="barman",
        started=float(base.get("begin_time_timestamp") or 0),
        stopped=float(base.get("end_time_timestamp") or row.get("end_time_timestamp") or 0),
        start_lsn=str(base.get("begin_lsn") or ""),
        stop_lsn=str(base.get("end_lsn") or ""),
        start_wal=str(base.get("begin_wal") or ""),
        stop_wal=str(base.get("end_wal") or ""),
        size=int(base.get("disk_usage_bytes") or 0),
        status=str(row.get("status") or show.get("status") or ""),
        extra={
            "retention": str(row.get("retention_status", "")),
            "tablespaces": "\n".join(str(t["name"]) for t in row.get("tablespaces") or ()),
        },
    )


def tablespace_options(backup: ToolBackup | None, place: Path) -> list[str]:
    """``--tablespace NAME:LOCATION`` for each of the backup's tablespaces, under ``place``:
    by default ``barman recover`` writes them back where the backup found them, which on one
    machine is the live primary's own tablespace directory."""
    names = (backup.extra.get("tablespaces", "") if backup else "").splitlines()
    return [f"--tablespace={name}:{place / name}" for name in names if name]
