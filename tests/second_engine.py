"""A second Docker engine that does not share this machine's files, for the volume backend.

It runs in a private mount namespace with its own ``/tmp`` and ``/dev/shm`` (where run
directories live) and its own data root, listening on a loopback TCP port: to the harness it
is an engine on another machine. Started and stopped by a test fixture; its data root is a
temporary directory removed at the end, and it gets SIGTERM if pytest dies (PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pytest_pgdr.basics.wait import poll

PR_SET_PDEATHSIG = 1
FORWARD_RULE = ["FORWARD", "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
BRIDGE_ADDRESS = "10.231.7.1/24"  # the second engine's default bridge (unused otherwise)


def missing_prerequisite() -> str:
    """Why a second engine cannot run here ('' when it can)."""
    if os.geteuid() != 0:
        return "a second Docker engine needs root (its own mount namespace and data root)"
    for program in ("dockerd", "unshare", "docker", "iptables"):
        if shutil.which(program) is None:
            return f"a second Docker engine needs {program}, which is not installed"
    return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _storage_driver() -> str:
    out = subprocess.run(
        ["docker", "info", "--format", "{{.Driver}}"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _script(state: Path, port: int, driver: str, bridge: str) -> str:
    (state / "daemon.json").write_text(json.dumps({}))
    return (
        "mount --make-rprivate / && mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /dev/shm"
        f" && exec dockerd --config-file {state}/daemon.json --data-root {state}/data"
        f" --exec-root {state}/exec --pidfile {state}/dockerd.pid -H tcp://127.0.0.1:{port}"
        f" --storage-driver {driver} --bridge {bridge} --iptables=false --ip6tables=false"
    )


@contextlib.contextmanager
def _own_bridge(port: int) -> Iterator[str]:
    """A default bridge of the engine's own. (With ``--bridge none`` dockerd deletes
    ``docker0``, the first engine's, at start: its default network would be gone.)"""
    name = f"pgdr2-{port}"
    ip = ["ip", "link"]
    subprocess.run([*ip, "add", name, "type", "bridge"], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "addr", "add", BRIDGE_ADDRESS, "dev", name], check=True)
        subprocess.run([*ip, "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run([*ip, "delete", name], check=False, capture_output=True)


@contextlib.contextmanager
def second_engine(images: list[str]) -> Iterator[str]:
    """Start the engine, load ``images`` into it, yield its DOCKER_HOST; stop and remove it."""
    port = _free_port()
    with _own_bridge(port) as bridge:
        yield from _engine(images, port, bridge)


def _engine(images: list[str], port: int, bridge: str) -> Iterator[str]:
    state = Path(tempfile.mkdtemp(prefix="pytest-pgdr-engine2-", dir="/var/tmp"))
    url = f"tcp://127.0.0.1:{port}"
    log = open(state / "dockerd.log", "wb")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        ["unshare", "--mount", "sh", "-c", _script(state, port, _storage_driver(), bridge)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    added_rule = _allow_bridged_traffic()
    try:
        poll(lambda: _answers(url, proc, state), "the second Docker engine", START_TIMEOUT)
        for image in images:
            _load(image, url)
        yield url
    finally:
        _stop(proc)
        log.close()
        if added_rule:
            subprocess.run(["iptables", "-D", *FORWARD_RULE], check=False, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def _answers(url: str, proc: subprocess.Popen[bytes], state: Path) -> bool:
    import docker

    if proc.poll() is not None:
        raise RuntimeError(
            f"the second Docker engine exited: {(state / 'dockerd.log').read_text()[-2000:]}"
        )
    try:
        client = docker.DockerClient(base_url=url, timeout=5)
    except docker.errors.DockerException:
        return False  # not listening yet
    try:
        return bool(client.ping())
    finally:
        client.close()


def _allow_bridged_traffic() -> bool:
    """The first engine's FORWARD policy drops what it does not know, and with
    bridge-nf-call-iptables that includes traffic inside the second engine's bridges."""
    check = subprocess.run(["iptables", "-C", *FORWARD_RULE], capture_output=True, check=False)
    if check.returncode == 0:
        return False
    subprocess.run(["iptables", "-I", *FORWARD_RULE], capture_output=True, check=True)
    return True


def _load(image: str, url: str) -> None:
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    load = subprocess.run(
        ["docker", "-H", url, "load", "-q"], stdin=save.stdout, capture_output=True, check=False
    )
    save.wait()
    if save.returncode or load.returncode:
        raise RuntimeError(f"loading {image} into the second engine failed: {load.stderr!r}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
