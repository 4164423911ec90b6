"""Live standby: pause, resume, promote while paused, and a delayed standby as a recovery tool
(PostgreSQL's 005_replay_delay.pl; Lab 14 practice challenge 2).

While replay is paused the standby keeps receiving WAL but applies none of it: the rows stay
invisible until ``pg_wal_replay_resume()``. A standby that applies WAL only after a delay
lets an operator pause it before an accidental DELETE replays, and copy the rows back to the
primary: recovery without any restore.

The primary holds the team's database (``pgdr_data``): the accident deletes every row of its
victim table (``pgdr_victim``), the rows come back from the paused standby with ``COPY``
(triggers off, as a restore does), and the whole database's fingerprint is what it was. The
pause drill's marker rows (``t``) live in ``postgres``.
"""

from __future__ import annotations

import time

import pytest

from pytest_pgdr import Lsn, Measurement, Node, Topology, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import TeamData, accidental_delete

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


def test_pause_resume_and_promote_while_paused(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    primary = pgdr.primary()
    pgdr_data.load(primary)
    team = fingerprint(primary, pgdr_data.dbname)
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
    assert_same(team, fingerprint(standby, pgdr_data.dbname), "the team's database, promoted")
    assert standby.timeline() == 2
    insert_rows(standby, 3001, 3001)


def test_delayed_standby_undoes_an_accidental_delete(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary()
    pgdr_data.load(primary)
    victim = pgdr_data.victim(primary)
    primary.query("CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL)")
    delayed = pgdr.replica(primary, name="delayed", delay=f"{DELAY_S}s")
    pgdr.wait_caught_up(primary, delayed)  # the rows predate the standby: no delay for them
    primary.query("INSERT INTO t VALUES (-1, 'marker')")
    marker_committed = time.monotonic()
    before = fingerprint(primary, db)

    accident = accidental_delete(primary, db, victim)
    if accident.deleted == 0:
        pytest.skip(f"the victim table {victim} is empty: deleting nothing is no disaster")
    deleted_at = primary.lsn()
    rto = pgdr_measure.declare_disaster()
    pause(delayed)
    rto.lap("pause delayed standby")
    wait_received(delayed, deleted_at)
    assert before.rows(victim) == accident.deleted
    assert_same(before.only(victim), fingerprint(delayed, db).only(victim), "not replayed yet")
    copy_back(delayed, primary, db, victim)
    rto.stop("copy rows back")
    assert_same(before, fingerprint(primary, db), f"{db} on the primary after copying rows back")

    delayed.scalar("SELECT pg_wal_replay_resume()")
    delayed.poll_query("SELECT count(*) > 0 FROM t WHERE id = -1", "the marker on delayed")
    shown_after = time.monotonic() - marker_committed
    pgdr_measure.record("marker_visible_after_s", round(shown_after, 3))
    assert shown_after >= DELAY_S - 0.05, f"applied {shown_after:.2f} s after commit"
    delayed.configure(recovery_min_apply_delay=None)
    delayed.reload()
    pgdr.wait_caught_up(primary, delayed)
    assert_same(before, fingerprint(delayed, db), f"{db} on the delayed standby once caught up")


def copy_back(source: Node, primary: Node, db: str, victim: str) -> None:
    """Stream the victim's rows from the paused standby into the primary in one transaction,
    its triggers and foreign-key checks off as a restore has them (``COPY`` leaves generated
    columns out and writes identity columns as they were)."""
    with source.connect(db) as src, primary.connect(db, autocommit=False) as dst:
        dst.execute("SET LOCAL session_replication_role = replica")
        with (
            src.cursor().copy(f"COPY {victim} TO STDOUT (FORMAT binary)") as out,
            dst.cursor().copy(f"COPY {victim} FROM STDIN (FORMAT binary)") as into,
        ):
            for block in out:
                into.write(block)
        dst.commit()
