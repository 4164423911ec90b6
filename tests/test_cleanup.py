"""Nothing survives a session: after a pass, a failure, Ctrl-C, or a killed pytest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
