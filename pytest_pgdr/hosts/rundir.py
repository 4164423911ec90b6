"""Per-process run directories, port claims, and the watchdog.

Layout under the base directory (default: the system temp dir)::

    pgdr-run-<pid>-<random>/      one per pytest process (controller or xdist worker), mode 0711
        owner                     "<pid> <process start ticks>"
        <topology>/<node>/data    data directories (0700, owned by the server user)
    pytest-pgdr-ports-<uid>/<port>   exclusive claims, so xdist workers never share a port
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pytest_pgdr.hosts.procs import process_start_ticks
from pytest_pgdr.hosts.sweep import RUN_PREFIX, kill_servers_in


@dataclass
class RunDir:
    """This process's run directory, its port claims, and its watchdog (started by
    :func:`pytest_pgdr.hosts.watchdog.start_watchdog`)."""

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
