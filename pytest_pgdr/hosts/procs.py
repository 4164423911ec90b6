"""Process helpers (Linux /proc): start times, children, states."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    return data.rsplit(")", 1)[1].split()


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it is not running."""
    fields = _stat_fields(pid)
    if not fields or fields[0] == "Z":
        return None
    return int(fields[19]) if len(fields) > 19 else None


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` (R, S, T for stopped, Z...), or None if it is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def _children(pid: int) -> list[int] | None:
    """The children of ``pid``'s main thread (a server's processes are single-threaded), or
    None where the kernel does not list them."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return None if Path(f"/proc/{pid}").exists() else []
    except (OSError, ValueError):
        return []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: children, their children..."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        children = _children(parent)
        for child in child_pids(parent) if children is None else children:
            found.append(child)
            todo.append(child)
    return found


def working_in(root: Path) -> list[int]:
    """The processes whose working directory is ``root`` or below it (a postmaster and all
    its children work in their data directory, even once orphaned or stopped)."""
    top = root.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd == top or top in cwd.parents:
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie counts as gone)."""
    return process_start_ticks(pid) is None
