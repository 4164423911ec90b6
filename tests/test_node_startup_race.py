"""Node.start must not take a crashed server's stale postmaster.pid for the new server's.

After a crash, postmaster.pid still says "ready" with the dead postmaster's PID. The new
postmaster replaces the file once it starts. ``Node._started`` reads the file twice (status,
then PID): when the replacement lands between the two reads it sees the old "ready" and the
new PID, and ``start()`` returns while crash recovery is still running; the next query is
refused. That is the flake of ``test_failover_follow_and_rewind`` (``old.start()`` then
``old.in_recovery()``: "Connection refused"; its log has no "ready" line after the restart).
The fix is one read of the file for both values (in ``cluster/node.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_pgdr.cluster.node import Node
from pytest_pgdr.hosts.files import this_machine

STALE = "111\n/data\n1700000000\n5432\n/sock\n127.0.0.1\n  1234  5678\nready   \n"
FRESH = "222\n/data\n1700000100\n5432\n/sock\n127.0.0.1\n  1234  9999\nstarting\n"


class _Running:
    pid = 222

    def poll(self) -> None:
        return None


def test_start_is_not_fooled_when_postmaster_pid_is_replaced_between_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = Node.__new__(Node)
    node.name, node.datadir, node.proc = "old", tmp_path, _Running()
    node.host = this_machine()  # type: ignore[assignment]
    pidfile = tmp_path / "postmaster.pid"
    pidfile.write_text(STALE)
    real_read = Path.read_text
    reads = {"n": 0}

    def read_then_replace(self: Path, *args: Any, **kwargs: Any) -> str:
        text = real_read(self, *args, **kwargs)
        if self == pidfile and reads["n"] == 0:  # the new postmaster swaps the file now
            reads["n"] += 1
            pidfile.write_text(FRESH)
        return text

    monkeypatch.setattr(Path, "read_text", read_then_replace)
    assert node._started(0) is False, "a starting server was taken for a ready one"
