"""Runbook: accidental DELETE (Lab 14 steps 3 and 5; guide "Restore Strategies").

``DELETE FROM <victim>`` hits the team's database (``pgdr_data``: your schema files or seed
hook, else the built-in dataset; the victim is ``pgdr_victim``, by default the largest table
nothing depends on). Two ways back:

* from the last logical dump: restore it into a new database and swap it in with
  ``ALTER DATABASE ... RENAME``; every write made after the dump is lost, and the drill counts
  exactly those commits (its RPO) against a client-side ledger of acknowledged writes;
* point-in-time recovery of a base backup to just before the DELETE, by its transaction id
  (``recovery_target_xid``, exclusive) or by the server's clock read just before it
  (``recovery_target_time``): nothing committed before the DELETE is lost.

The acknowledged writes go to the drills' own table (schema ``pgdr_drill``), apart from the
team's tables; the fingerprints cover the whole database.
"""

from __future__ import annotations

import pytest
from psycopg import sql

from pytest_pgdr import Node, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.drill.dataset import create_database
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.drill.teamdata import (
    Accident,
    TeamData,
    accidental_delete,
    app_write,
    ledger_table,
)
from pytest_pgdr.drill.verify import assert_indexes_ok

pytestmark = pytest.mark.pgdr

WRITES = 25  # commits the application makes, one per transaction, before the DELETE


def loaded(pgdr: Topology, data: TeamData, archive: bool) -> tuple[Node, str, str]:
    """A primary holding the team's database; the victim table and the ledger table."""
    primary = pgdr.primary(archive=archive)
    data.load(primary)
    return primary, data.victim(primary), ledger_table(primary, data.dbname)


def the_accident(node: Node, dbname: str, victim: str) -> Accident:
    accident = accidental_delete(node, dbname, victim)
    if accident.deleted == 0:
        pytest.skip(f"the victim table {victim} is empty: deleting nothing is no disaster")
    return accident


def missing(node: Node, ledger: str, ids: list[int], dbname: str) -> int:
    """How many acknowledged commits have no row after recovery."""
    rows = node.query(f"SELECT id FROM {ledger} WHERE id = ANY(%s)", [ids], dbname=dbname)
    return len(ids) - len(rows)


def record_loss(measure: Measurement, lost: int) -> None:
    """RPO of a drill whose ledger holds one row per commit."""
    measure.record("rpo_rows_lost", lost)
    measure.record_rpo(lost_commits=lost)


def swap_in(node: Node, dbname: str, restored: str) -> None:
    """Put ``restored`` in the damaged database's place; keep the damaged one for forensics."""
    node.close_connections()
    node.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        [dbname],
    )
    rename = sql.SQL("ALTER DATABASE {} RENAME TO {}")
    damaged = sql.Identifier(f"{dbname}_damaged")
    node.query(rename.format(sql.Identifier(dbname), damaged).as_string(None))
    node.query(rename.format(sql.Identifier(restored), sql.Identifier(dbname)).as_string(None))


@pytest.mark.pgdr(rpo="none")  # loses every commit since the dump, by design: no RPO objective
def test_restore_last_dump_and_swap(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary, victim, ledger = loaded(pgdr, pgdr_data, archive=False)
    dump = pgdr.host.make_dir(pgdr.root / "dumps") / "nightly.dump"
    primary.run_tool("pg_dump", "-Fc", "-f", dump, "-d", db)
    expected = fingerprint(primary, db)
    written = app_write(primary, db, WRITES)  # acknowledged, after the dump
    accident = the_accident(primary, db, victim)

    rto = pgdr_measure.declare_disaster()
    create_database(primary, f"{db}_restore")
    primary.run_tool("pg_restore", "-j", "2", "-d", f"{db}_restore", dump)
    rto.lap("restore dump")
    swap_in(primary, db, f"{db}_restore")
    rto.lap("swap databases")
    actual = fingerprint(primary, db)
    rto.stop("verify")

    assert_same(expected, actual, f"{db} restored from the last dump")
    assert actual.rows(victim) == accident.deleted
    assert_indexes_ok(primary, db)
    lost = missing(primary, ledger, written, db)
    record_loss(pgdr_measure, lost)
    assert lost == WRITES, f"expected exactly the {WRITES} commits made after the dump lost"
    assert missing(primary, ledger, written, f"{db}_damaged") == 0, (
        "the damaged database must still hold the lost commits (for manual recovery)"
    )


def pitr_target(kind: str, accident: Accident) -> RecoveryTarget:
    if kind == "xid":
        return RecoveryTarget.xid(accident.xid, inclusive=False)
    return RecoveryTarget.time(accident.before)


def stop_line(kind: str, accident: Accident) -> str:
    """The log line recovery must print. By time, an autovacuum commit may land between the
    clock reading and the DELETE's commit and be the one recovery stops before."""
    xid = accident.xid if kind == "xid" else r"\d+"
    return rf"recovery stopping before commit of transaction {xid}, time "


@pytest.mark.parametrize("kind", ["xid", "time"])
def test_pitr_to_just_before_the_delete(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement, kind: str
) -> None:
    db = pgdr_data.dbname
    primary, victim, ledger = loaded(pgdr, pgdr_data, archive=True)
    backup = pgdr.backup(primary)
    written = app_write(primary, db, WRITES)  # after the backup: replayed from WAL
    expected = fingerprint(primary, db)
    accident = the_accident(primary, db, victim)
    pgdr.wait_archived(primary)

    rto = pgdr_measure.declare_disaster()
    restored = pgdr.restore(backup, pitr_target(kind, accident), stopwatch=rto)
    actual = fingerprint(restored, db)
    rto.stop("verify")

    assert_same(
        expected, actual, f"{db} recovered to just before the DELETE ({kind})", sequences="at_least"
    )
    assert actual.rows(victim) == accident.deleted
    lost = missing(restored, ledger, written, db)
    record_loss(pgdr_measure, lost)
    assert lost == 0
    assert restored.log.grep(stop_line(kind, accident))
    assert restored.timeline() == primary.timeline() + 1
    assert_indexes_ok(restored, db)
