"""A base backup taken from a standby, then point-in-time recovery from it (pgBackRest's
backup-standby option and CloudNativePG's backups from replicas; PostgreSQL
src/bin/pg_basebackup/t/010_pg_basebackup.pl runs pg_basebackup against a standby).

``pg_basebackup`` runs against a streaming standby (its backup_label says ``BACKUP FROM:
standby``) and, for comparison, against the primary. The primary archives the WAL, notes a
restore point and a transaction between marker batches, and each backup recovers to the same
targets: the standby's backup gives exactly the rows the primary's gives, and exactly the
team's database as it was at the target.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_rows, ledger_table

pytestmark = pytest.mark.pgdr

INSPECT = {"archive_mode": "off"}  # restores that are only inspected stay out of the archive
FIRST, SECOND, THIRD = 30, 20, 10  # marker commits: before the xid, before the name, after


def test_backup_from_standby_restores_like_one_from_the_primary(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary()
    pgdr_data.load(primary)
    ledger = ledger_table(primary, db)
    standby = pgdr.replica(primary, name="standby")
    pgdr.wait_caught_up(primary, standby)
    primary.scalar("CHECKPOINT")  # gives the standby a restartpoint to start its backup at
    from_standby = pgdr.backup(standby, label="from_standby")
    from_primary = pgdr.backup(primary, label="from_primary")
    label = pgdr.host.read_text(from_standby.path / "backup_label")
    assert "BACKUP FROM: standby" in label, label

    app_write(primary, db, FIRST)
    with primary.connect(db, autocommit=False) as conn:  # the transaction the xid target names
        conn.execute(f"INSERT INTO {ledger} DEFAULT VALUES")
        row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
    assert row is not None
    xid = str(row[0])
    at_xid = fingerprint(primary, db)
    app_write(primary, db, SECOND)
    primary.scalar("SELECT pg_create_restore_point('pgdr_standby_backup')")
    at_name = fingerprint(primary, db)
    app_write(primary, db, THIRD)
    pgdr.wait_archived(primary)

    targets = {
        "name": (RecoveryTarget.name("pgdr_standby_backup"), FIRST + 1 + SECOND, at_name),
        "xid": (RecoveryTarget.xid(xid), FIRST + 1, at_xid),
    }
    pairs = ((from_standby, "name"), (from_standby, "xid"), (from_primary, "name"))
    rto = pgdr_measure.declare_disaster()
    nodes = {
        (source.label, key): pgdr.restore(
            source, targets[key][0], name=f"{source.label}_{key}", settings=INSPECT, wait=False
        )
        for source, key in pairs
    }
    for (_, key), node in nodes.items():
        pgdr.wait_recovery(node, targets[key][0])
    rto.lap(f"restore {len(nodes)} (backup, target) pairs in parallel")
    prints = {pair: fingerprint(node, db) for pair, node in nodes.items()}
    rto.stop("verify")

    for (source, key), node in nodes.items():
        _, rows, expected = targets[key]
        assert ledger_rows(node, ledger, db) == rows, f"{source} to {key}: marker rows"
        assert_same(expected, prints[source, key], f"{source} to {key}", sequences="at_least")
        assert node.timeline() == 2
    assert_same(prints["from_primary", "name"], prints["from_standby", "name"], "both backups")
    pgdr_measure.record("standby_backup_bytes", from_standby.size_bytes())
    pgdr_measure.record("primary_backup_bytes", from_primary.size_bytes())
