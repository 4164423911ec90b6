"""Nothing survives a session: after a pass, a failure, Ctrl-C, or a killed pytest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pgdr.basics.wait import poll

HOLD = """
import pathlib, time

def test_hold(pgdr_primary):
    pathlib.Path("ready").write_text(str(pgdr_primary.datadir))
    time.sleep(60)
"""


def postmasters_for(datadir: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.readlink(proc / "cwd") == datadir:
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def start_holding_session(pytester: pytest.Pytester) -> tuple[subprocess.Popen[bytes], str]:
    pytester.makepyfile(test_hold=HOLD)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pgdr",
            "--pgdr-scenarios=none",
            "-p",
            "no:cacheprovider",
            "test_hold.py",
        ],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ready = pytester.path / "ready"
    poll(lambda: ready.exists() and ready.read_text(), "the inner session's primary", timeout=60)
    datadir = ready.read_text()
    assert postmasters_for(datadir), "the inner session's server should be running"
    return proc, datadir


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"])
def test_no_server_or_directory_survives(pytester: pytest.Pytester, sig: int) -> None:
    proc, datadir = start_holding_session(pytester)
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=60)
    poll(
        lambda: not postmasters_for(datadir) and not Path(datadir).exists(),
        "the server to be stopped and its directory removed",
        timeout=30,
    )
    assert time.monotonic() - started < 30


def test_next_run_sweeps_orphans(tmp_path: Path) -> None:
    from pytest_pgdr.hosts.runtime import RUN_PREFIX, sweep_orphans

    orphan = tmp_path / f"{RUN_PREFIX}999999-x"
    (orphan / "1_t" / "primary" / "data").mkdir(parents=True)
    (orphan / "owner").write_text("999999 1")
    alive = tmp_path / f"{RUN_PREFIX}{os.getpid()}-y"
    alive.mkdir()
    from pytest_pgdr.hosts.runtime import process_start_ticks

    (alive / "owner").write_text(f"{os.getpid()} {process_start_ticks(os.getpid())}")
    assert sweep_orphans(tmp_path) == [orphan]
    assert not orphan.exists() and alive.exists()


FROZEN = """
import pathlib, time
from pytest_pgdr import faults

def test_frozen(pgdr_primary):
    with faults.freeze(pgdr_primary):
        pathlib.Path("ready").write_text(str(pgdr_primary.datadir))
        time.sleep(120)
"""


def _state(pid: int) -> str | None:
    from pytest_pgdr.hosts.procs import process_state

    return process_state(pid)


def process_start_ticks(pid: int) -> int | None:
    from pytest_pgdr.hosts.procs import process_start_ticks as ticks

    return ticks(pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["terminated", "killed"])
def test_no_frozen_server_survives(pytester: pytest.Pytester, sig: int) -> None:
    """A server stopped by a freeze ignores SIGQUIT and never sees its postmaster die: the
    watchdog must kill every one of its processes, stopped or not."""
    pytester.makepyfile(test_frozen=FROZEN)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--pgdr", "--pgdr-scenarios=none", "-p"]
        + ["no:cacheprovider", "test_frozen.py"],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = pytester.path / "ready"
        poll(lambda: ready.exists() and ready.read_text(), "the inner drill's freeze", timeout=60)
        datadir = ready.read_text()

        def all_stopped() -> bool:
            pids = postmasters_for(datadir)
            return len(pids) > 1 and all(_state(pid) == "T" for pid in pids)

        poll(all_stopped, "every process of the frozen server to be stopped", timeout=30)
        server = {pid: process_start_ticks(pid) for pid in postmasters_for(datadir)}
        proc.send_signal(sig)
        proc.wait(timeout=60)
        # by PID (and start time): once its directory is removed, a process left behind no
        # longer shows it as its working directory
        poll(
            lambda: all(process_start_ticks(pid) != ticks for pid, ticks in server.items()),
            "every process of the frozen server to be gone",
            timeout=30,
            interval=0.02,
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _server_segments(node: Any) -> set[str]:
    from pytest_pgdr.hosts.procs import descendants
    from pytest_pgdr.hosts.shm import mapped_segments

    return mapped_segments([node.proc.pid, *descendants(node.proc.pid)])


@pytest.fixture
def harness() -> Iterator[Any]:
    from pytest_pgdr.basics.settings import Settings
    from pytest_pgdr.session import HarnessSession

    session = HarnessSession(Settings(enabled=True))  # the run dir: private, traversable
    try:
        yield session
    finally:
        session.close()


def test_a_crashed_server_leaves_no_shared_memory(harness: Any) -> None:
    from pytest_pgdr.hosts.shm import SHM_DIR

    topology = harness.topology(harness.installation("embedded"), "dsm")
    node = topology.primary()
    segments = _server_segments(node)
    assert segments, "a running server maps its dynamic shared memory control segment"
    node.crash()
    topology.close()
    assert [s for s in segments if (SHM_DIR / s).exists()] == []


def test_the_sweep_removes_shared_memory_of_crashed_servers(harness: Any) -> None:
    """A server crashed in a run that is then killed: the sweep removes its segments."""
    from pytest_pgdr.hosts.shm import SHM_DIR
    from pytest_pgdr.hosts.sweep import kill_servers_in

    topology = harness.topology(harness.installation("embedded"), "dsm")
    running, crashed = topology.primary("running"), topology.primary("crashed")
    segments = _server_segments(crashed)
    live = _server_segments(running)
    crashed.crash()  # and the run "dies" before closing the topology
    kill_servers_in(harness.run.path)
    assert [s for s in segments if (SHM_DIR / s).exists()] == []
    assert not running.is_running() and not postmasters_for(str(running.datadir))
    assert [s for s in live if (SHM_DIR / s).exists()] == []  # killed there, so removed too
    topology.close()


def test_next_run_sweep_kills_stopped_orphans(tmp_path: Path) -> None:
    """A stopped process left working in a dead run's directory (a frozen server whose
    watchdog died too) is killed by the next run's sweep, children included."""
    from pytest_pgdr.hosts.procs import process_state
    from pytest_pgdr.hosts.runtime import RUN_PREFIX, sweep_orphans

    datadir = tmp_path / f"{RUN_PREFIX}999998-x" / "1_t" / "primary" / "data"
    datadir.mkdir(parents=True)
    (datadir.parents[2] / "owner").write_text("999998 1")
    server = subprocess.Popen(
        ["sh", "-c", "sleep 300 & echo $!; wait"], cwd=datadir, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        child = int(server.stdout.readline())
        for pid in (server.pid, child):
            os.kill(pid, signal.SIGSTOP)
        poll(lambda: process_state(child) == "T", "the child to stop", timeout=10)
        sweep_orphans(tmp_path)
        assert server.wait(timeout=10) == -signal.SIGKILL
        poll(lambda: process_state(child) in (None, "Z"), "the child to be killed", timeout=10)
    finally:
        server.kill()
        server.wait()
