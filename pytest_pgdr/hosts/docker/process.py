"""A node's container, used like a ``subprocess.Popen`` of its postmaster (PID 1)."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

from pytest_pgdr.basics.errors import WaitTimeout
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.hosts.base import ServerProcess
from pytest_pgdr.hosts.docker.engine import DockerError, _ignore_missing

SERVER_PORT = 5432
LONG_WAIT = 3600.0


def _exit_code(code: int) -> int:
    """Like Popen: a process killed by signal N gives -N (Docker reports 128 + N)."""
    return -(code - 128) if 128 < code <= 128 + 64 else code


class ContainerProcess:
    """A node's container, used like a ``subprocess.Popen`` of its postmaster (PID 1)."""

    pid = 1

    def __init__(self, api: Any, container_id: str, name: str, node: str) -> None:
        self.api = api
        self.container_id = container_id
        self.name = name
        self.node = node
        self.returncode: int | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        return f"<ContainerProcess {self.name} returncode={self.returncode}>"

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        import docker.errors

        try:
            state = self.api.inspect_container(self.container_id)["State"]
        except docker.errors.NotFound:
            self.returncode = -signal.SIGKILL  # removed underneath us
            return self.returncode
        if state.get("Running") or state.get("Status") in ("created", "restarting"):
            return None
        self.returncode = _exit_code(int(state.get("ExitCode", 0)))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; ``subprocess.TimeoutExpired`` if still running after ``timeout``."""
        try:
            poll(
                lambda: self.poll() is not None,
                f"container {self.name} to exit",
                LONG_WAIT if timeout is None else timeout,
                interval=0.01,
            )
        except WaitTimeout:
            raise subprocess.TimeoutExpired(self.name, timeout or LONG_WAIT) from None
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """``docker kill --signal`` to the postmaster; nothing if the container has stopped."""
        if self.returncode is None:
            _ignore_missing(lambda: self.api.kill(self.container_id, signal=int(sig)))

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def published_port(self) -> int:
        """The 127.0.0.1 port that Docker forwards to the server's 5432."""
        if self._port is None:
            bindings = self.api.port(self.container_id, SERVER_PORT) or []
            if not bindings:
                raise DockerError(
                    f"Container {self.name} publishes no port {SERVER_PORT}",
                    "it has stopped or was started without publishing",
                    "Start the node again",
                )
            self._port = int(bindings[0]["HostPort"])
        return self._port


def container_of(proc: ServerProcess) -> ContainerProcess:
    """The container behind a server process this host started."""
    if not isinstance(proc, ContainerProcess):
        raise TypeError(f"{proc!r} is not a server started by a DockerHost")
    return proc
