"""A backup of a server with a tablespace, restored to new locations (PostgreSQL
src/test/recovery 033_replay_tsp_drops and src/bin/pg_basebackup/t/010_pg_basebackup.pl's
``--tablespace-mapping`` cases; pgBackRest's tablespace map on restore).

The team's victim table and the drills' marker table live in a tablespace outside the data
directory. A plain ``pg_basebackup --tablespace-mapping=OLD=NEW`` writes the tablespace to a
new place next to the backup (its ``pg_tblspc`` link says so); a tar backup carries it as
``<oid>.tar`` with a ``tablespace_map``. Each is restored (with the WAL written since) into a
server whose tablespace link points at its own new location, never at the backup's or the
primary's: the team database is intact and a write to the restored tablespace leaves the
primary's data alone. Backups and standbys the harness makes map tablespaces by themselves
(next to the backup, into the standby's directory).
"""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, Node, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr

INSPECT = {"archive_mode": "off"}  # restores that are only inspected stay out of the archive
BEFORE, AFTER = 20, 30  # marker commits before the backups and after (replayed from WAL)


def location(node: Node) -> str:
    return str(
        node.scalar(
            "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'pgdr_ts'"
        )
    )


def tablespace_of(node: Node, table: str, dbname: str) -> str:
    return str(
        node.scalar(
            "SELECT t.spcname FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace"
            " WHERE c.oid = %s::regclass",
            [table],
            dbname=dbname,
        )
    )


def test_tablespace_restored_to_a_new_location(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary()
    pgdr_data.load(primary)
    ledger = ledger_table(primary, db)
    victim = pgdr_data.victim(primary)
    original = pgdr.host.make_dir(pgdr.root / "tablespace_primary")
    primary.query(f"CREATE TABLESPACE pgdr_ts LOCATION '{original}'")
    for table in (victim, ledger):
        primary.query(f"ALTER TABLE {table} SET TABLESPACE pgdr_ts", dbname=db)
    oid = str(primary.scalar("SELECT oid FROM pg_tablespace WHERE spcname = 'pgdr_ts'"))
    app_write(primary, db, BEFORE)
    mapped = pgdr.archive.backups / "plain_tablespace"
    plain = pgdr.backup(
        primary, label="plain", extra_args=(f"--tablespace-mapping={original}={mapped}",)
    )
    tar = pgdr.backup(primary, label="tar", fmt="tar")
    auto = pgdr.backup(primary, label="auto")  # the harness maps it next to the backup
    standby = pgdr.replica(primary, name="standby")  # and into the standby's own directory
    app_write(primary, db, AFTER)
    expected = fingerprint(primary, db)
    pgdr.wait_archived(primary)
    pgdr.wait_caught_up(primary, standby)
    link = pgdr.host.read_link
    assert link(plain.path / "pg_tblspc" / oid) == mapped, "the mapping was applied"
    assert link(auto.path / "pg_tblspc" / oid) == pgdr.archive.backups / "auto.tablespaces" / oid
    assert location(standby) == str(standby.root / "tablespaces" / oid)
    assert_same(expected, fingerprint(standby, db), "the standby", sequences="at_least")
    assert f"{oid}.tar" in pgdr.host.names(tar.path), pgdr.host.names(tar.path)

    rto = pgdr_measure.declare_disaster()
    nodes = [
        pgdr.restore(backup, name=f"from_{backup.label}", settings=INSPECT, wait=False)
        for backup in (plain, tar)
    ]
    for node in nodes:
        pgdr.wait_recovery(node, RecoveryTarget.latest())
    rto.lap("restore 2 backups with their tablespace")
    prints = [fingerprint(node, db) for node in nodes]
    rto.stop("verify")

    for node, got in zip(nodes, prints, strict=True):
        own = node.root / "tablespaces" / oid
        assert location(node) == str(own), f"{node.name}: the tablespace is at its own place"
        assert pgdr.host.read_link(node.datadir / "pg_tblspc" / oid) == own
        assert_same(expected, got, f"{node.name} with its tablespace", sequences="at_least")
        assert tablespace_of(node, ledger, db) == tablespace_of(node, victim, db) == "pgdr_ts"
        assert int(node.scalar(f"SELECT count(*) FROM {ledger}", dbname=db)) == BEFORE + AFTER
        node.query(f"DELETE FROM {victim}", dbname=db)  # the restored copy is its own
    assert location(primary) == str(original)
    assert_same(expected, fingerprint(primary, db), "the primary after the restores wrote")
    pgdr_measure.record("tablespace_oid", int(oid))
