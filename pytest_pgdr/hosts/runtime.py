"""Per-process run directories, port claims, and the sweep that removes what a killed run left.

Layout under the base directory (default: the system temp dir)::

    pgdr-run-<pid>-<random>/      one per pytest process (controller or xdist worker), mode 0711
        owner                     "<pid> <process start ticks>"
        <topology>/<node>/data    data directories (0700, owned by the server user)
    pytest-pgdr-ports-<uid>/<port>   exclusive claims, so xdist workers never share a port

A run directory whose owner process is gone is an orphan: its servers are stopped (SIGKILL of
their process groups) and the directory removed, either by the watchdog started with the run
or by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

RUN_PREFIX = "pgdr-run-"


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it is not running."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    if fields and fields[0] == "Z":
        return None
    return int(fields[19]) if len(fields) > 19 else None


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


def owner_alive(owner_file: Path) -> bool:
    try:
        pid_text, ticks_text = owner_file.read_text().split()
    except (OSError, ValueError):
        return False
    return process_start_ticks(int(pid_text)) == int(ticks_text)


def _postmaster_pids(run_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for pidfile in run_dir.rglob("postmaster.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            found.append((int(pidfile.read_text().splitlines()[0]), pidfile.parent))
    return found


def _is_postmaster_of(pid: int, datadir: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).resolve() == datadir.resolve()
    except OSError:
        return False


def kill_servers_in(run_dir: Path) -> int:
    """SIGKILL every server whose data directory lies in ``run_dir``; returns how many."""
    killed = 0
    for pid, datadir in _postmaster_pids(run_dir):
        if not _is_postmaster_of(pid, datadir):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
            killed += 1
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return killed


def sweep_orphans(base: Path) -> list[Path]:
    """Stop the servers and remove the run directories of pytest processes that are gone."""
    swept = []
    for run_dir in base.glob(RUN_PREFIX + "*"):
        if not run_dir.is_dir() or owner_alive(run_dir / "owner"):
            continue
        kill_servers_in(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)
        swept.append(run_dir)
    ports = base / f"pytest-pgdr-ports-{os.geteuid()}"
    for claim in ports.glob("*") if ports.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            if process_start_ticks(int(claim.read_text().split()[0])) is None:
                claim.unlink()
    return swept


@dataclass
class RunDir:
    """This process's run directory, its port claims, and its watchdog."""

    base: Path
    path: Path = field(init=False)
    ports_dir: Path = field(init=False)
    claimed: set[int] = field(default_factory=set)
    watchdog: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-", dir=self.base))
        os.chmod(self.path, 0o711)
        (self.path / "owner").write_text(f"{os.getpid()} {process_start_ticks(os.getpid())}")
        self.ports_dir = self.base / f"pytest-pgdr-ports-{os.geteuid()}"
        self.ports_dir.mkdir(mode=0o700, exist_ok=True)

    def start_watchdog(self) -> None:
        """A detached process that sweeps this run directory if this process is killed."""
        self.watchdog = subprocess.Popen(
            [sys.executable, "-m", "pytest_pgdr.hosts.watchdog", str(self.path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def claim_port(self) -> int:
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            try:
                flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
                fd = os.open(self.ports_dir / str(port), flags, 0o600)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                raise
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
            self.claimed.add(port)
            return port
        raise RuntimeError("could not claim a free TCP port on 127.0.0.1")

    def release_port(self, port: int) -> None:
        with contextlib.suppress(OSError):
            (self.ports_dir / str(port)).unlink()
        self.claimed.discard(port)

    def close(self) -> None:
        kill_servers_in(self.path)
        for port in list(self.claimed):
            self.release_port(port)
        shutil.rmtree(self.path, ignore_errors=True)
        if self.watchdog is not None:
            with contextlib.suppress(ProcessLookupError):
                self.watchdog.kill()
            self.watchdog.wait()
