"""Unit tests of topology helpers that need no server: timeline history, segment arithmetic,
the "whole archive replayed" check, recovery-failure explanations and argument guards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_pgdr import Backup, ConfigError, Lsn, RecoveryError, Topology
from pytest_pgdr.cluster.backups import _read_backup_label
from pytest_pgdr.cluster.lsn import history_parent, segment_number, unreplayed_segments
from pytest_pgdr.cluster.pitr import _has_target, _why_recovery_failed
from pytest_pgdr.hosts.files import this_machine
from pytest_pgdr.hosts.runtime import child_pids

MB16 = 16 * 1024 * 1024
MB64 = 64 * 1024 * 1024


def test_history_parent_reads_the_last_entry() -> None:
    text = (
        '1\t0/3000108\tno recovery target specified\n\n2\t0/5000A28\tat restore point "my_target"\n'
    )
    assert history_parent(text) == (2, Lsn.parse("0/5000A28"))


def test_history_parent_ignores_comments_and_empty_files() -> None:
    assert history_parent("# comment only\n\n") is None
    assert history_parent("") is None
    assert history_parent("# c\n1\t0/3000000\tbefore 2000-01-01\n") == (1, Lsn(0x3000000))


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [
        ("000000010000000000000003", MB16, 3),
        ("0000000100000001000000FF", MB16, 256 + 255),
        ("000000020000000100000002", MB64, 64 + 2),
    ],
)
def test_segment_number(name: str, size: int, expected: int) -> None:
    assert segment_number(name, size) == expected


ARCHIVE = [
    "000000010000000000000002",
    "000000010000000000000003",
    "000000010000000000000005",
    "000000010000000000000006",
    "000000020000000000000005",
    "000000020000000000000006",
]


def test_unreplayed_segments_after_a_gap() -> None:
    end = Lsn.parse("0/3FFF000")  # replay ended inside segment 3: 4 is missing
    assert unreplayed_segments(ARCHIVE, 1, end, MB16) == [
        "000000010000000000000005",
        "000000010000000000000006",
    ]


def test_unreplayed_segments_counts_only_the_replayed_timeline() -> None:
    assert unreplayed_segments(ARCHIVE, 2, Lsn.parse("0/6000100"), MB16) == []
    assert unreplayed_segments(ARCHIVE, 3, Lsn.parse("0/1000000"), MB16) == []


def test_unreplayed_segments_at_a_segment_boundary() -> None:
    # Replay ended exactly where segment 5 starts: segment 5 itself was never read.
    assert unreplayed_segments(ARCHIVE, 1, Lsn(5 * MB16), MB16)[0] == "000000010000000000000005"
    # Replay ended inside the last archived segment: nothing was left out.
    assert unreplayed_segments(ARCHIVE, 1, Lsn(6 * MB16 + 100), MB16) == []


def test_has_target() -> None:
    assert not _has_target({"recovery_target_timeline": "latest"})
    assert not _has_target({"recovery_target_name": ""})
    assert _has_target({"recovery_target_name": "x"})
    assert _has_target({"recovery_target": "immediate"})
    assert _has_target({"recovery_target_lsn": "0/3000000"})


@pytest.mark.parametrize(
    ("log", "why"),
    [
        ("FATAL:  multiple recovery targets specified", "two recovery targets"),
        ("FATAL:  recovery ended before configured recovery target was reached", "never reached"),
        (
            "FATAL:  requested recovery stop point is before consistent recovery point",
            "before the backup's consistency point",
        ),
        ("FATAL:  something unexpected happened", "something unexpected happened"),
        ("LOG:  nothing fatal", "see the server log"),
    ],
)
def test_why_recovery_failed(log: str, why: str) -> None:
    assert why in _why_recovery_failed(log)


def test_read_backup_label(tmp_path: Path) -> None:
    (tmp_path / "backup_label").write_text(
        "START WAL LOCATION: 0/6000028 (file 000000020000000000000006)\n"
        "CHECKPOINT LOCATION: 0/6000080\nSTART TIMELINE: 2\n"
    )
    info = Backup(path=tmp_path, label="b", source="p", fmt="plain")
    _read_backup_label(this_machine(), info)
    assert (info.start_lsn, info.timeline) == ("0/6000028", 2)


def stub(**attrs: Any) -> Any:
    return SimpleNamespace(**attrs)


def test_rewind_refuses_a_running_server() -> None:
    old = stub(name="old", is_running=lambda: True)
    with pytest.raises(RecoveryError, match="pg_rewind of old needs it stopped"):
        Topology.rewind(stub(), old, stub())


def test_combine_needs_backups_of_this_topology() -> None:
    topo = stub(require=lambda major, feature: None, nodes={})
    with pytest.raises(ConfigError, match="oldest first"):
        Topology.combine(topo, [])
    orphan = Backup(path=Path("/nonexistent"), label="b", source="gone", fmt="plain")
    with pytest.raises(ConfigError):
        Topology.combine(topo, [orphan])


def test_child_pids_finds_a_child_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in child_pids(os.getpid())
        assert os.getpid() not in child_pids(os.getpid())
    finally:
        child.kill()
        child.wait()
