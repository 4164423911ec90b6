"""PostgreSQL's dynamic shared memory segments left behind by killed servers.

A server keeps its dynamic shared memory in files ``/dev/shm/PostgreSQL.<handle>`` (a control
segment and the segments it lists). A clean shutdown removes them; a SIGKILL leaves them, and
only a restart of the same data directory would clean up. So whoever kills a server notes the
segments its processes map (:func:`mapped_segments`, :func:`record_segments`), and removes them
once those processes are gone (:func:`remove_dead_segments`): a segment still mapped by any live
process is never touched, nor is a file that is not a PostgreSQL segment.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

SHM_DIR = Path("/dev/shm")
RECORD = "dsm-segments"  # in a run directory: segments of servers killed in that run
SETTLED_S = 2.0
_NAME = re.compile(r"^PostgreSQL\.[0-9]+$")
_MAPPED = re.compile(rb"/dev/shm/(PostgreSQL\.[0-9]+)")


def _maps_of(pid: int | str) -> set[str]:
    try:
        data = Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return set()
    return {m.decode() for m in _MAPPED.findall(data)}


def mapped_segments(pids: Iterable[int]) -> set[str]:
    """The segment names (``PostgreSQL.<handle>``) that these processes map."""
    found: set[str] = set()
    for pid in pids:
        found |= _maps_of(pid)
    return found


def segments_in_use() -> set[str]:
    """Every segment name some live process on this machine maps."""
    found: set[str] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found |= _maps_of(entry.name)
    return found


def record_segments(run_dir: Path, names: Iterable[str]) -> None:
    """Note segments of a server being killed, so that a later sweep can remove them."""
    lines = "".join(f"{name}\n" for name in sorted(names) if _NAME.match(name))
    if lines:
        with contextlib.suppress(OSError), open(run_dir / RECORD, "a", encoding="ascii") as fh:
            fh.write(lines)


def recorded_segments(run_dir: Path) -> set[str]:
    try:
        text = (run_dir / RECORD).read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    return {line for line in text.split() if _NAME.match(line)}


def remove_dead_segments(names: Iterable[str], shm_dir: Path = SHM_DIR) -> list[str]:
    """Remove the segments among ``names`` that no live process maps; the names removed."""
    wanted = {name for name in names if _NAME.match(name)}
    wanted = {name for name in wanted if os.path.lexists(shm_dir / name)}
    if not wanted:
        return []
    removed = []
    for name in sorted(wanted - segments_in_use()):
        with contextlib.suppress(FileNotFoundError):
            (shm_dir / name).unlink()
            removed.append(name)
    return removed


def remove_leftovers(since: float, uid: int, shm_dir: Path = SHM_DIR) -> list[str]:
    """At the very end of a run: remove the segments the server user ``uid`` created since
    ``since`` (epoch seconds) that no live process maps: what servers killed in ways no one
    noted (by a cluster manager, or with their watchdog) left behind."""
    names = []
    settled = time.time() - SETTLED_S  # a server maps a segment right after creating it
    for entry in shm_dir.glob("PostgreSQL.*"):
        with contextlib.suppress(OSError):
            info = entry.lstat()
            if info.st_uid == uid and since <= info.st_mtime <= settled:
                names.append(entry.name)
    return remove_dead_segments(names, shm_dir)
