"""Restore after a switchover (CloudNativePG's backup and restore tests across a switchover;
PostgreSQL src/test/recovery 004_timeline_switch for the history file).

A base backup is taken on timeline 1. A planned switchover then promotes the standby
(timeline 2, its history file archived) and the old primary follows it; the application keeps
writing on the new primary. The whole cluster is then lost, and the old backup is restored
from the archive to its end: recovery crosses from timeline 1 to timeline 2 through the
archived history file, and every row written after the switchover is there. The restore
starts timeline 3, whose history file lists both switches, and every history file is in the
archive.
"""

from __future__ import annotations

import re

import pytest

from pytest_pgdr import Lsn, Measurement, Node, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr

ON_TL1, ON_TL2 = 30, 40  # marker commits before and after the switchover


def shutdown_checkpoint(node: Node) -> Lsn:
    """Where a cleanly stopped server's last record (its shutdown checkpoint) is."""
    text = node.run_tool("pg_controldata", node.datadir).stdout
    assert re.search(r"Database cluster state:\s+shut down$", text, re.M), text
    found = re.search(r"Latest checkpoint location:\s+(\S+)", text)
    assert found, text
    return Lsn.parse(found.group(1))


def switchover(pgdr: Topology, old: Node, new: Node) -> None:
    """Stop the old primary cleanly, promote the standby once it replayed everything, and
    make the old primary its standby (nothing diverged: no pg_rewind)."""
    pgdr.wait_caught_up(old, new)
    old.stop()
    pgdr.wait_replayed(new, shutdown_checkpoint(old))
    pgdr.promote(new)
    pgdr.follow(old, new)


def test_restore_old_backup_across_the_switchover(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    old = pgdr.primary(name="old_primary")
    pgdr_data.load(old)
    ledger = ledger_table(old, db)
    backup = pgdr.backup(old, label="before_switchover")
    new = pgdr.replica(old, name="new_primary")
    tl1 = app_write(old, db, ON_TL1)
    switchover(pgdr, old, new)
    assert new.timeline() == 2
    tl2 = app_write(new, db, ON_TL2)
    pgdr.wait_caught_up(new, old)
    expected = fingerprint(new, db)
    pgdr.wait_archived(new)
    pgdr.wait_history_archived(2)
    for node in (old, new):
        node.crash()  # the whole cluster is lost

    rto = pgdr_measure.declare_disaster()
    restored = pgdr.restore(backup, RecoveryTarget.latest(), name="restored", stopwatch=rto)
    actual = fingerprint(restored, db)
    rto.stop("verify")

    assert_same(expected, actual, "the restore across the switchover", sequences="at_least")
    ids = {int(r[0]) for r in restored.query(f"SELECT id FROM {ledger}", dbname=db)}
    assert ids == set(tl1) | set(tl2), "exactly the markers of both timelines"
    assert restored.timeline() == 3, "the archive holds timeline 2, so the restore starts 3"
    pgdr.wait_history_archived(3)
    assert pgdr.archive.history_files() == ["00000002.history", "00000003.history"]
    history = pgdr.host.read_text(pgdr.archive.wal / "00000003.history").splitlines()
    assert [line.split("\t")[0] for line in history if line.strip()] == ["1", "2"], history
    pgdr_measure.record("markers_after_switchover", len(tl2))
