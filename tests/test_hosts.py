"""The Host contract: both hosts honour it, faults ask capabilities, the watchdog runs."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_pgdr.basics.errors import VersionSkip
from pytest_pgdr.hosts import base
from pytest_pgdr.hosts.docker import shared
from pytest_pgdr.hosts.docker.engine import DockerError
from pytest_pgdr.hosts.local import LocalHost
from pytest_pgdr.hosts.osuser import resolve_os_user
from pytest_pgdr.hosts.procs import process_state
from pytest_pgdr.hosts.rundir import RunDir
from pytest_pgdr.hosts.watchdog import module_name


def test_watchdog_module_name_is_derived_and_runnable(tmp_path: Path) -> None:
    name = module_name()
    assert name == "pytest_pgdr.hosts.watchdog"
    assert callable(importlib.import_module(name).watch)
    gone = tmp_path / "no-such-run-dir"  # the watchdog exits at once when it is absent
    proc = subprocess.run(
        [sys.executable, "-m", name, str(gone)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_fault_unsupported_is_one_class_and_a_skip() -> None:
    from pytest_pgdr import faults
    from pytest_pgdr.drill import faults as drill_faults

    assert faults.FaultUnsupported is drill_faults.FaultUnsupported is base.FaultUnsupported
    assert issubclass(base.FaultUnsupported, VersionSkip)


def test_local_host_lacks_partition_and_wal_limit(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    try:
        host = LocalHost(resolve_os_user("auto"), run)
        assert host.capabilities == frozenset({base.FREEZE, base.LOCAL_FILES})
        proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
        try:
            with pytest.raises(base.FaultUnsupported, match="Network partitions"):
                host.disconnect(proc)
            with pytest.raises(base.FaultUnsupported, match="size-limited pg_wal for n1"):
                host.limit_wal("n1", tmp_path, "64m")
            with pytest.raises(base.FaultUnsupported, match="full disk into n1"):
                host.fill_wal("n1")
        finally:
            proc.kill()
            proc.wait()
    finally:
        run.close()


def test_local_freeze_thaw_and_reap(tmp_path: Path) -> None:
    """freeze stops the process group, thaw continues it; reap kills one that ignores SIGQUIT
    and touches nothing else."""
    from pytest_pgdr.basics.wait import poll

    run = RunDir(tmp_path)
    host = LocalHost(resolve_os_user("auto"), run)
    script = (
        "import signal, time; signal.signal(signal.SIGQUIT, signal.SIG_IGN);"
        " print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], start_new_session=True, stdout=subprocess.PIPE
    )
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        host.freeze(proc)
        poll(lambda: process_state(proc.pid) == "T", "the child to stop", 10, interval=0.005)
        host.thaw(proc)
        poll(lambda: process_state(proc.pid) != "T", "the child to continue", 10, interval=0.005)
        os.kill(proc.pid, signal.SIGQUIT)
        host.reap(proc)
        assert proc.returncode == -signal.SIGKILL
        assert bystander.poll() is None
    finally:
        for p in (proc, bystander):
            p.kill()
            p.wait()
        run.close()


def test_an_engine_that_does_not_see_this_machines_files_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "_checked", set())

    def elsewhere(argv: list[str]) -> str:
        return f"cat: {argv[-1]}: No such file or directory"

    with pytest.raises(DockerError) as info:
        shared.check_engine_sees(tmp_path, elsewhere)
    text = str(info.value)
    assert "does not see this machine's files" in text
    assert "No such file or directory" in text and "docs/scale.md" in text
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_an_engine_that_sees_this_machines_files_is_checked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "_checked", set())
    reads: list[list[str]] = []

    def here(argv: list[str]) -> str:
        reads.append(argv)
        return "" if len(reads) == 1 else Path(argv[-1]).read_text()  # one lost output

    shared.check_engine_sees(tmp_path, here)
    shared.check_engine_sees(tmp_path, here)
    assert len(reads) == 2


def test_leftover_segments_since_the_run_started_are_removed(tmp_path: Path) -> None:
    from pytest_pgdr.hosts.shm import remove_leftovers

    started = time.time() - 60
    for name, mtime in (
        ("PostgreSQL.11", started + 5),  # made during the run, mapped by no one: removed
        ("PostgreSQL.22", started - 5),  # older than the run: another server's, kept
        ("other.33", started + 5),  # not a PostgreSQL segment: kept
    ):
        (tmp_path / name).write_bytes(b"\0")
        os.utime(tmp_path / name, (mtime, mtime))
    assert remove_leftovers(started, os.getuid(), tmp_path) == ["PostgreSQL.11"]
    assert remove_leftovers(started, os.getuid() + 1, tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PostgreSQL.22", "other.33"]
