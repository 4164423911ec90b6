"""Runbook: recovering from a dropped table (guide "Real-World Scenarios", scenario 3).

``DROP TABLE <victim>`` on the live primary (the team's database, ``pgdr_data``; the victim is
``pgdr_victim``, by default the largest table nothing depends on), while the application keeps
writing elsewhere. The primary is not rewound: a side instance is restored from the base
backup and recovered to just before the DROP (by its transaction id, exclusive) and left
paused there, read-only, the way the guide's ``recovery_target_action = 'pause'`` leaves it.

The trap the guide does not mention: paused just before the DROP's commit, the side instance
has already replayed the DROP's ACCESS EXCLUSIVE lock, and holds it for the unfinished
transaction. Reading the table there (and so ``pg_dump``) waits forever. The drill proves the
lock is held (``lock_timeout``), then ends recovery with ``pg_wal_replay_resume()``: the side
instance promotes, the unfinished DROP is rolled back and the table can be read. (A target
before the lock, e.g. an LSN taken before the DROP started, avoids the lock altogether.)

``pg_dump -t <victim>`` there takes the table with its keys, indexes and sequences, and
``pg_restore`` of that whole dump puts it back into the live primary.

Not ``pg_restore -t`` as the guide's step 7 has it: pg_restore's ``-t`` restores the table and
its rows only, without its primary key, indexes or sequence defaults.

Proven by fingerprints: the table (rows, content, columns, constraints, indexes, triggers,
grants, sequences) is exactly what it was before the DROP, including rows deleted from it
after the base backup (WAL replay), and the commits made elsewhere after the DROP are kept.
"""

from __future__ import annotations

import psycopg
import pytest

from pytest_pgdr import Node, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.drill.teamdata import TeamData, app_write, is_partition, ledger_table
from pytest_pgdr.drill.verify import assert_indexes_ok

pytestmark = pytest.mark.pgdr

CHANGED_AFTER_BACKUP = 5  # rows of the victim deleted after the base backup (WAL replay)
WRITES_AFTER_DROP = 7  # commits the application makes elsewhere after the DROP


def drop_victim(node: Node, dbname: str, victim: str) -> str:
    """The accident; returns the xid of the transaction that dropped the table."""
    try:
        with node.connect(dbname, autocommit=False) as conn:
            conn.execute(f"DROP TABLE {victim}")
            xid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]  # type: ignore[index]
            conn.commit()
    except psycopg.errors.DependentObjectsStillExist as exc:
        pytest.skip(
            f"the victim table {victim} has dependent objects ({exc.diag.message_detail}):"
            " dropping it would need CASCADE, which this drill does not undo; set pgdr_victim"
            " to a table nothing depends on (or leave it auto)"
        )
    return str(xid)


def change_after_backup(node: Node, dbname: str, victim: str) -> int:
    """Delete a few of the victim's rows after the base backup: the restored table must show
    it, proving WAL after the backup was replayed into it."""
    return len(
        node.query(
            f"DELETE FROM {victim} WHERE ctid IN (SELECT ctid FROM {victim} LIMIT %s) RETURNING 1",
            [CHANGED_AFTER_BACKUP],
            dbname=dbname,
        )
    )


def assert_drop_lock_held(side: Node, dbname: str, victim: str) -> None:
    """Paused before the DROP's commit, the side instance holds the DROP's lock on the table:
    ``pg_locks`` shows it granted (to the startup process) and a read cannot get past it."""
    held = side.scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'relation'"
        " AND mode = 'AccessExclusiveLock' AND granted AND relation = to_regclass(%s)",
        [victim],
        dbname=dbname,
    )
    assert held == 1, f"the side instance should hold the DROP's lock on {victim}"
    with side.connect(dbname) as conn:
        conn.execute("SET lock_timeout = '10ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute(f"SELECT count(*) FROM {victim}")


def test_pitr_side_instance_then_restore_table(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary()
    pgdr_data.load(primary)
    victim = pgdr_data.victim(primary)
    if is_partition(primary, db, victim):
        pytest.skip(
            f"the victim table {victim} is a partition: pg_restore of a dumped partition"
            " conflicts with the keys its parent recreates when it is attached again; this"
            " drill restores whole tables (set pgdr_victim to one)"
        )
    ledger = ledger_table(primary, db)
    backup = pgdr.backup(primary)
    at_backup = fingerprint(primary, db).rows(victim)
    changed = change_after_backup(primary, db, victim)
    before = fingerprint(primary, db)
    assert before.rows(victim) == at_backup - changed
    xid = drop_victim(primary, db, victim)
    written = app_write(primary, db, WRITES_AFTER_DROP)
    after = fingerprint(primary, db)
    assert victim not in after.tables
    pgdr.wait_archived(primary)

    rto = pgdr_measure.declare_disaster()
    side = pgdr.restore(
        backup, RecoveryTarget.xid(xid, inclusive=False, action="pause"), name="side", stopwatch=rto
    )
    assert side.replay_pause_state() == "paused"
    assert side.log.grep(rf"recovery stopping before commit of transaction {xid}, time ")
    assert_drop_lock_held(side, db, victim)
    side.scalar("SELECT pg_wal_replay_resume()")
    pgdr.wait_promoted(side)
    rto.lap("end recovery of side instance")
    dump = pgdr.host.make_dir(pgdr.root / "dumps") / "victim.dump"
    side.run_tool("pg_dump", "-Fc", "--lock-wait-timeout=30s", "-t", victim, "-f", dump, "-d", db)
    rto.lap("dump table from side instance")
    primary.run_tool("pg_restore", "-d", db, dump)
    rto.lap("restore table into primary")
    final = fingerprint(primary, db)
    rto.stop("verify")

    assert_same(
        after.merged(before.only(victim)),
        final,
        f"primary after restoring {victim}",
        sequences="at_least",
    )
    kept = primary.query(f"SELECT count(*) FROM {ledger} WHERE id = ANY(%s)", [written], dbname=db)
    lost = WRITES_AFTER_DROP - int(kept[0][0])
    pgdr_measure.record("rpo_rows_lost", lost)
    pgdr_measure.record_rpo(lost_commits=lost)
    assert lost == 0
    assert_indexes_ok(primary, db)
