"""A killed run's containers do not wait for the next docker run (issue 9d).

When the watchdog dies with pytest, the next run removes the old run directory whatever its
backend; its containers, networks and volumes, and the image-probe containers of a run killed
while probing, must go then too (when Docker answers).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pgdr.hosts.docker import docker_status

_OK, _REASON = docker_status()
if not _OK:
    pytest.skip(_REASON, allow_module_level=True)

from pytest_pgdr.hosts.docker import (  # noqa: E402
    LABEL_MACHINE,
    LABEL_OWNER,
    LABEL_OWNER_START,
    LABEL_ROLE,
    LABEL_RUN,
    LABEL_RUNDIR,
    docker_client,
    remove_run_containers,
)
from pytest_pgdr.hosts.procs import process_start_ticks  # noqa: E402

IMAGE = "pytest-pgdr/pg15:latest"


class Owner:
    """A stand-in pytest process: alive while the test sets up (so that no concurrent sweep
    takes its containers early), killed when the test wants it dead."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        self.pid = str(self.proc.pid)
        self.ticks = str(process_start_ticks(self.proc.pid))

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _labels(pid: str, ticks: str) -> dict[str, str]:
    import socket

    return {LABEL_OWNER: pid, LABEL_OWNER_START: ticks, LABEL_MACHINE: socket.gethostname()}


def _exists(kind: str, ident: str) -> bool:
    import docker.errors

    api = docker_client().api
    inspect = {
        "container": api.inspect_container,
        "network": api.inspect_network,
        "volume": api.inspect_volume,
    }[kind]
    try:
        inspect(ident)
    except docker.errors.NotFound:
        return False
    return True


@pytest.fixture
def owner() -> Iterator[Owner]:
    proc = Owner()
    yield proc
    proc.kill()


@pytest.fixture
def leftovers(tmp_path: Path, owner: Owner) -> Iterator[dict[str, Any]]:
    """What a killed run left: a paused container, a network and a volume of its (now
    removed) run directory, and a running probe container of the killed process."""
    client = docker_client()
    pid, ticks = owner.pid, owner.ticks
    run_dir = tmp_path / f"pgdr-run-{pid}-gone"
    of_run = {**_labels(pid, ticks), LABEL_RUN: run_dir.name, LABEL_RUNDIR: str(run_dir)}
    (run_dir / "owner").parent.mkdir()
    (run_dir / "owner").write_text(f"{pid} {ticks}")  # alive until the owner is killed
    made = {
        "container": client.containers.run(
            IMAGE, ["sleep", "300"], detach=True, network_mode="none", labels=of_run
        ),
        "probe": client.containers.run(
            IMAGE,
            ["sleep", "300"],
            detach=True,
            network_mode="none",
            labels={**_labels(pid, ticks), LABEL_ROLE: "probe"},
        ),
        "network": client.networks.create(f"pgdr-test-{pid}-gone", labels=of_run),
        "volume": client.volumes.create(f"pgdr-test-{pid}-gone", labels=of_run),
    }
    made["container"].pause()  # a frozen node: docker pause
    try:
        yield made
    finally:
        for key in ("container", "probe"):
            if _exists("container", made[key].id):
                made[key].remove(force=True)
        if _exists("network", made["network"].id):
            made["network"].remove()
        if _exists("volume", made["volume"].name):
            made["volume"].remove(force=True)


def _gone(made: dict[str, Any]) -> bool:
    return not (
        _exists("container", made["container"].id)
        or _exists("container", made["probe"].id)
        or _exists("network", made["network"].id)
        or _exists("volume", made["volume"].name)
    )


def test_a_local_run_removes_a_dead_runs_containers(
    leftovers: dict[str, Any], owner: Owner, tmp_path: Path
) -> None:
    from pytest_pgdr.basics.settings import Settings
    from pytest_pgdr.session import HarnessSession

    owner.kill()  # (and its run directory is gone: removed by a local run's sweep)
    os.unlink(tmp_path / f"pgdr-run-{owner.pid}-gone" / "owner")
    session = HarnessSession(Settings(enabled=True, backend="local", basetemp=str(tmp_path)))
    try:
        assert not session._docker_checked  # a local run: Docker is never asked for drills
        assert _gone(leftovers)  # (by this session's sweep, or a concurrent one)
    finally:
        session.close()


def test_the_watchdog_removes_its_owners_probe_containers(tmp_path: Path, owner: Owner) -> None:
    """remove_run_containers (the watchdog's, once the owner is gone) takes the owner's probes
    too, and nobody else's. (The owner stays alive here, so that no concurrent sweep of
    another test process takes them first.)"""
    client = docker_client()
    run_dir = tmp_path / f"pgdr-run-{owner.pid}-x"
    run_dir.mkdir()
    (run_dir / "owner").write_text(f"{owner.pid} {owner.ticks}")
    own = client.containers.create(
        IMAGE, ["true"], labels={**_labels(owner.pid, owner.ticks), LABEL_ROLE: "probe"}
    )
    me = (str(os.getpid()), str(process_start_ticks(os.getpid())))
    other = client.containers.create(IMAGE, ["true"], labels={**_labels(*me), LABEL_ROLE: "probe"})
    try:
        assert remove_run_containers(run_dir) == [own.name]
        assert not _exists("container", own.id) and _exists("container", other.id)
    finally:
        for box in (own, other):
            if _exists("container", box.id):
                box.remove(force=True)
