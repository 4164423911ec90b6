"""Prepared transactions (two-phase commit) across a crash and across PITR (PostgreSQL
src/test/recovery 009_twophase and 023_pitr_prepared_xact).

A ``PREPARE TRANSACTION`` is a promise: whatever happens to the server, the transaction stays
prepared until someone commits or rolls it back. The drills set ``max_prepared_transactions``
(its standby and restores inherit it, as they must: a standby with fewer slots refuses to
start) and check:

* after a crash (SIGKILL) the restarted primary still lists both prepared transactions, their
  rows invisible; one is committed, the other rolled back, and its standby replays both;
* a PITR of the archive to a restore point *before* the PREPARE has no trace of it; to one
  *between* PREPARE and COMMIT PREPARED, the restored server holds it prepared (rows
  invisible) and it can still be committed there; to one *after* COMMIT PREPARED, the rows are
  simply there.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, Node, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr

TWO_PHASE = {"max_prepared_transactions": 5}
INSPECT = {"archive_mode": "off"}  # restores that are only inspected stay out of the archive
COMMITTED, PREPARED = 20, 15  # plain marker commits; rows inside each prepared transaction


def prepare(node: Node, dbname: str, ledger: str, gid: str, rows: int) -> list[int]:
    """Insert ``rows`` markers in one transaction and ``PREPARE TRANSACTION gid``; their ids."""
    with node.connect(dbname) as conn:
        conn.execute("BEGIN")
        ids = [
            int(r[0])
            for r in conn.execute(
                f"INSERT INTO {ledger} SELECT FROM generate_series(1, %s) RETURNING id", [rows]
            ).fetchall()
        ]
        conn.execute(f"PREPARE TRANSACTION '{gid}'")
    return ids


def prepared(node: Node, dbname: str) -> set[str]:
    rows = node.query("SELECT gid FROM pg_prepared_xacts WHERE database = %s", [dbname])
    return {str(r[0]) for r in rows}


def visible(node: Node, ledger: str, ids: list[int], dbname: str) -> int:
    return int(node.scalar(f"SELECT count(*) FROM {ledger} WHERE id = ANY(%s)", [ids], dbname))


def total(node: Node, ledger: str, dbname: str) -> int:
    return int(node.scalar(f"SELECT count(*) FROM {ledger}", dbname=dbname))


def test_prepared_transactions_survive_a_crash(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary(settings=TWO_PHASE)
    pgdr_data.load(primary)
    ledger = ledger_table(primary, db)
    standby = pgdr.replica(primary, name="standby")  # inherits max_prepared_transactions
    app_write(primary, db, COMMITTED)
    to_commit = prepare(primary, db, ledger, "pgdr_commit_me", PREPARED)
    to_roll_back = prepare(primary, db, ledger, "pgdr_roll_me_back", PREPARED)
    expected = fingerprint(primary, db)  # prepared rows are invisible
    pgdr.wait_caught_up(primary, standby)

    primary.crash()
    rto = pgdr_measure.declare_disaster()
    primary.start()
    rto.lap("crash recovery")
    survived = prepared(primary, db)
    invisible = visible(primary, ledger, to_commit + to_roll_back, db)
    primary.query("COMMIT PREPARED 'pgdr_commit_me'", dbname=db)
    primary.query("ROLLBACK PREPARED 'pgdr_roll_me_back'", dbname=db)
    rto.lap("resolve prepared transactions")
    actual = fingerprint(primary, db)
    rto.stop("verify")

    assert survived == {"pgdr_commit_me", "pgdr_roll_me_back"}, "both survive the crash"
    assert invisible == 0, "prepared rows stay invisible until COMMIT PREPARED"
    assert primary.timeline() == 1, "a crash restart stays on its timeline"
    assert visible(primary, ledger, to_commit, db) == PREPARED
    assert visible(primary, ledger, to_roll_back, db) == 0
    assert total(primary, ledger, db) == COMMITTED + PREPARED
    assert prepared(primary, db) == set()
    pgdr.wait_caught_up(primary, standby)
    assert prepared(standby, db) == set(), "the standby replayed both resolutions"
    assert visible(standby, ledger, to_commit + to_roll_back, db) == PREPARED
    assert_same(actual, fingerprint(standby, db), "the standby", sequences="at_least")
    primary.query(f"DELETE FROM {ledger} WHERE id = ANY(%s)", [to_commit], dbname=db)
    # a crash loses the sequence's cached values: it may only move forward
    assert_same(expected, fingerprint(primary, db), "without the markers", sequences="at_least")


def test_prepared_transaction_at_each_pitr_target(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary(settings=TWO_PHASE)
    pgdr_data.load(primary)
    ledger = ledger_table(primary, db)
    backup = pgdr.backup(primary)
    app_write(primary, db, COMMITTED)
    primary.scalar("SELECT pg_create_restore_point('before_prepare')")
    at_before = fingerprint(primary, db)
    ids = prepare(primary, db, ledger, "pgdr_pitr", PREPARED)
    primary.scalar("SELECT pg_create_restore_point('after_prepare')")
    primary.query("COMMIT PREPARED 'pgdr_pitr'", dbname=db)
    primary.scalar("SELECT pg_create_restore_point('after_commit')")
    at_commit = fingerprint(primary, db)
    pgdr.wait_archived(primary)

    names = ("before_prepare", "after_prepare", "after_commit")
    rto = pgdr_measure.declare_disaster()
    nodes = {
        n: pgdr.restore(backup, RecoveryTarget.name(n), name=n, settings=INSPECT, wait=False)
        for n in names
    }
    for n, node in nodes.items():
        pgdr.wait_recovery(node, RecoveryTarget.name(n))
    rto.lap(f"restore {len(nodes)} targets in parallel")
    state = {n: (prepared(node, db), visible(node, ledger, ids, db)) for n, node in nodes.items()}
    nodes["after_prepare"].query("COMMIT PREPARED 'pgdr_pitr'", dbname=db)
    rto.lap("commit the restored prepared transaction")
    prints = {n: fingerprint(node, db) for n, node in nodes.items()}
    rto.stop("verify")

    assert state == {
        "before_prepare": (set(), 0),  # never happened
        "after_prepare": ({"pgdr_pitr"}, 0),  # prepared, rows invisible
        "after_commit": (set(), PREPARED),  # committed: rows there
    }, "what each target holds of the prepared transaction"
    pgdr_measure.context["before_prepare"] = "no prepared transaction, no rows"
    pgdr_measure.context["after_prepare"] = "prepared and pending (rows invisible); committed"
    pgdr_measure.context["after_commit"] = f"committed: its {PREPARED} rows present"
    assert_same(at_before, prints["before_prepare"], "before the PREPARE", sequences="at_least")
    for n in ("after_prepare", "after_commit"):
        assert visible(nodes[n], ledger, ids, db) == PREPARED, n
        assert total(nodes[n], ledger, db) == COMMITTED + PREPARED, n
        assert_same(at_commit, prints[n], f"{n}, committed", sequences="at_least")
    assert total(nodes["before_prepare"], ledger, db) == COMMITTED
