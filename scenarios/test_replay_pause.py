"""Live standby: pause, resume, promote while paused, and a delayed standby as a recovery tool
(PostgreSQL's 005_replay_delay.pl; Lab 14 practice challenge 2).

While replay is paused the standby keeps receiving WAL but applies none of it: the rows stay
invisible until ``pg_wal_replay_resume()``. A standby that applies WAL only after a delay
lets an operator pause it before an accidental DELETE replays, and copy the rows back to the
primary: recovery without any restore.
"""

from __future__ import annotations

import time

import pytest

from pytest_pgdr import Lsn, Measurement, Node, Topology, assert_same, fingerprint

pytestmark = pytest.mark.pgdr

DELAY_S = 2


def insert_rows(node: Node, first: int, last: int) -> None:
    node.query(
        "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(%s::int, %s::int) g",
        [first, last],
    )


def count(node: Node) -> int:
    return int(node.scalar("SELECT count(*) FROM t"))


def pause(node: Node) -> None:
    node.scalar("SELECT pg_wal_replay_pause()")
    node.poll_query(
        "SELECT pg_get_wal_replay_pause_state() = 'paused'"
        if node.inst.major >= 14
        else "SELECT pg_is_wal_replay_paused()",
        f"{node.name} to pause replay",
    )


def wait_received(node: Node, lsn: Lsn) -> None:
    node.poll_query(
        f"SELECT '{lsn}'::pg_lsn <= pg_last_wal_receive_lsn()",
        f"{node.name} to receive WAL up to {lsn}",
    )


def test_pause_resume_and_promote_while_paused(pgdr: Topology, pgdr_measure: Measurement) -> None:
    primary = pgdr.primary()
    primary.query("CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL)")
    insert_rows(primary, 1, 1000)
    standby = pgdr.replica(primary)
    pgdr.wait_caught_up(primary, standby)
    assert standby.replay_pause_state() == "not paused"

    pause(standby)
    replayed = standby.lsn("replay")
    insert_rows(primary, 1001, 2000)
    wait_received(standby, primary.lsn())
    assert standby.lsn("replay") == replayed, "replay must stand still while paused"
    assert count(standby) == 1000, "rows written during the pause must stay invisible"

    standby.scalar("SELECT pg_wal_replay_resume()")
    pgdr.wait_caught_up(primary, standby)
    assert standby.replay_pause_state() == "not paused"
    assert count(standby) == 2000

    pause(standby)
    insert_rows(primary, 2001, 3000)
    wait_received(standby, primary.lsn())
    assert count(standby) == 2000
    rto = pgdr_measure.declare_disaster()
    primary.stop()
    rto.lap("stop primary")
    pgdr.promote(standby)
    rto.stop("promote while paused")
    assert count(standby) == 3000, "promotion replays everything received before it ends"
    assert standby.timeline() == 2
    insert_rows(standby, 3001, 3001)


def test_delayed_standby_undoes_an_accidental_delete(
    pgdr: Topology, pgdr_measure: Measurement
) -> None:
    primary = pgdr.primary()
    primary.query("CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL)")
    insert_rows(primary, 1, 1000)
    delayed = pgdr.replica(primary, name="delayed", delay=f"{DELAY_S}s")
    pgdr.wait_caught_up(primary, delayed)  # the rows predate the standby: no delay for them
    primary.query("INSERT INTO t VALUES (-1, 'marker')")
    marker_committed = time.monotonic()
    before = fingerprint(primary)

    primary.query("DELETE FROM t WHERE id % 2 = 0")  # the accident
    deleted_at = primary.lsn()
    rto = pgdr_measure.declare_disaster()
    pause(delayed)
    rto.lap("pause delayed standby")
    wait_received(delayed, deleted_at)
    assert count(delayed) == 1000, "the DELETE was received but must not have replayed"
    copy_back_deleted_rows(delayed, primary)
    rto.stop("copy rows back")
    assert_same(before, fingerprint(primary), "the primary after copying rows back")

    delayed.scalar("SELECT pg_wal_replay_resume()")
    delayed.poll_query("SELECT count(*) > 0 FROM t WHERE id = -1", "the marker on delayed")
    shown_after = time.monotonic() - marker_committed
    pgdr_measure.record("marker_visible_after_s", round(shown_after, 3))
    assert shown_after >= DELAY_S - 0.05, f"applied {shown_after:.2f} s after commit"
    delayed.configure(recovery_min_apply_delay=None)
    delayed.reload()
    pgdr.wait_caught_up(primary, delayed)
    assert_same(before, fingerprint(delayed), "the delayed standby once caught up")


def copy_back_deleted_rows(source: Node, primary: Node) -> None:
    """Read the rows the DELETE removed from the paused standby; insert them on the primary."""
    rows = source.query("SELECT id, note FROM t WHERE id % 2 = 0 ORDER BY id")
    assert len(rows) == 500
    with primary.connect() as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO t VALUES (%s, %s)", rows)
