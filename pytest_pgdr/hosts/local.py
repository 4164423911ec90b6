"""Where a node's processes and files live. The local host runs them on this machine.

A node never branches on where it runs: it asks its host to make directories, write files,
start the server, signal it and run client programs. Another host (a container) provides the
same methods.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_pgdr.cluster.template import HBA
from pytest_pgdr.hosts.osuser import OsUser
from pytest_pgdr.hosts.runtime import RunDir


class LocalHost:
    """Processes on this machine, run as the unprivileged server user."""

    kind = "local"
    client_address = "127.0.0.1"

    def __init__(self, user: OsUser, run: RunDir) -> None:
        self.user = user
        self.run_dir = run

    # files ------------------------------------------------------------------------------
    def make_dir(self, path: Path, mode: int = 0o700) -> Path:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        os.chmod(path, mode)
        self.user.chown(path)
        return path

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.chmod(tmp, mode)
        self.user.chown(tmp)
        os.replace(tmp, path)

    def remove_file(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    # processes --------------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "TZ", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(LC_ALL="C", HOME=str(self.run_dir.path), PGAPPNAME="pytest-pgdr")
        return env

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a program as the server user, capturing its output."""
        return subprocess.run(
            list(argv),
            env={**self.base_env(), **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            cwd="/",
            **self.user.popen_kwargs(),
        )

    # addressing: how servers listen and how they reach each other --------------------------
    def listen_addresses(self) -> str:
        return self.client_address

    def server_port(self, node_name: str, client_port: int) -> int:
        """The port the server listens on (locally: the port clients use)."""
        return client_port

    def peer_address(self, node_name: str) -> str:
        """How another server reaches ``node_name`` (for primary_conninfo, pg_rewind)."""
        return self.client_address

    def hba_lines(self) -> str:
        return HBA

    def close(self) -> None:
        """Release what this host holds (nothing for local processes)."""

    def spawn_server(
        self, argv: Sequence[str], log_path: Path, host_port: int = 0
    ) -> subprocess.Popen[bytes]:
        """Start a postmaster in its own process group, its output appended to ``log_path``."""
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.base_env(),
                cwd="/",
                start_new_session=True,
                **self.user.popen_kwargs(),
            )

    def signal(self, proc: subprocess.Popen[bytes], sig: int, group: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)

    def kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        self.signal(proc, signal.SIGKILL, group=True)
