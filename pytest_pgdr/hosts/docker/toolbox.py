"""Client programs in a topology's toolbox container: ``docker exec``, streamed.

Docker multiplexes an exec's stdout and stderr on one socket (8-byte frame headers); stdin is
written from a thread so that a large input never blocks reading the output.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from typing import Any

from pytest_pgdr.basics.wait import poll
from pytest_pgdr.hosts.docker.engine import DockerError, engine_host


class Toolbox:
    """A long-lived container of the topology that runs client programs (fast ``exec``)."""

    def __init__(self, api: Any, container_id: str, owner: str) -> None:
        self.api = api
        self.container_id = container_id
        self.owner = owner

    def run(
        self,
        args: list[str],
        environment: dict[str, str],
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in the toolbox, capturing its output (TimeoutExpired past timeout)."""
        import docker.errors

        try:
            exec_id = self.api.exec_create(
                self.container_id,
                args,
                stdin=input is not None,
                environment=environment,
                workdir="/",
            )["Id"]
        except docker.errors.NotFound:
            raise DockerError(
                f"The toolbox container of {self.owner} is gone",
                "it was removed while the topology was in use",
                "Check that nothing else removes pytest-pgdr containers",
            ) from None
        out, err = self._stream(exec_id, args, input, timeout)
        return subprocess.CompletedProcess(args, self._exec_exit(exec_id), out, err)

    def _stream(
        self, exec_id: str, args: list[str], input: str | None, timeout: float | None
    ) -> tuple[str, str]:
        sock = self.api.exec_start(exec_id, socket=True)
        raw: socket.socket = getattr(sock, "_sock", sock)
        deadline = None if timeout is None else time.monotonic() + timeout
        writer = _feed(raw, input) if input is not None else None
        try:
            chunks = _read_frames(raw, deadline)
        except subprocess.TimeoutExpired:
            self._kill_exec(exec_id)
            raise subprocess.TimeoutExpired(args, timeout or 0.0) from None
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            if writer is not None:
                writer.join(timeout=5)
        return (
            b"".join(chunks[1]).decode("utf-8", "replace"),
            b"".join(chunks[2]).decode("utf-8", "replace"),
        )

    def _exec_exit(self, exec_id: str) -> int:
        def finished() -> dict[str, Any] | None:
            info: dict[str, Any] = self.api.exec_inspect(exec_id)
            return None if info["Running"] else info

        info = poll(finished, "docker exec to report its exit code", 30, interval=0.002)
        return int(info["ExitCode"] if info["ExitCode"] is not None else -1)

    def _kill_exec(self, exec_id: str) -> None:
        """SIGKILL an exec'd program: through its PID when the engine runs on this machine;
        else, whose PIDs mean nothing here, every program exec'd in the toolbox."""
        with contextlib.suppress(Exception):
            if engine_host():
                kill = self.api.exec_create(self.container_id, ["sh", "-c", "kill -9 -1"])
                self.api.exec_start(kill["Id"])
                return
            pid = int(self.api.exec_inspect(exec_id).get("Pid") or 0)
            if pid > 1:
                os.kill(pid, signal.SIGKILL)


def _feed(raw: socket.socket, text: str) -> threading.Thread:
    """Write stdin in a thread (so a large input never blocks reading), then half-close."""

    def write() -> None:
        with contextlib.suppress(OSError):
            raw.sendall(text.encode())
            raw.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _read_frames(raw: socket.socket, deadline: float | None) -> dict[int, list[bytes]]:
    """Demultiplex Docker's stream (8-byte headers: stream 1/2, big-endian size) until EOF."""
    chunks: dict[int, list[bytes]] = {1: [], 2: []}
    buf = b""
    while True:
        wait = None if deadline is None else max(deadline - time.monotonic(), 0)
        ready, _, _ = select.select([raw], [], [], wait)
        if not ready:
            raise subprocess.TimeoutExpired("docker exec", wait or 0.0)
        data = raw.recv(65536)
        if not data:
            return chunks
        buf += data
        while len(buf) >= 8 and len(buf) >= 8 + int.from_bytes(buf[4:8], "big"):
            size = int.from_bytes(buf[4:8], "big")
            chunks.setdefault(buf[0], []).append(buf[8 : 8 + size])
            buf = buf[8 + size :]
