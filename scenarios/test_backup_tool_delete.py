"""The runbook's disasters undone through each tool's own restore (Lab 14 steps 3 and 5).

An accidental DELETE undone by PITR to just before the deleting transaction; a dropped table
copied back from a side restore (guide scenario 3); a delta restore over the stopped primary
where the tool can (only changed files rewritten); a backup taken from a standby; and a
restore after a switchover that must follow the new timeline.

The primary holds the team's database (``pgdr_data``): the DELETE hits its victim table
(``pgdr_victim``), and every restore gives back its whole fingerprint.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.backup import BackupTool
from pytest_pgdr.drill.teamdata import TeamData, accidental_delete, app_write, ledger_table

from .backup_tool_common import INSPECT, TABLE, assert_team_intact, ids, insert_rows, tool_primary

pytestmark = pytest.mark.pgdr

DELETE = "WITH gone AS (DELETE FROM pitr_rows WHERE id > 100) SELECT pg_current_xact_id()::text"


def test_accidental_delete_undone_by_the_tools_pitr(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    db = pgdr_data.dbname
    primary = tool_primary(pgdr, tool, pgdr_data)
    victim = pgdr_data.victim(primary)
    ledger = ledger_table(primary, db)
    backup = tool.backup(primary)
    kept = app_write(primary, db, 10)  # after the backup: replayed from the tool's WAL
    before = fingerprint(primary, db)
    accident = accidental_delete(primary, db, victim)
    if accident.deleted == 0:
        pytest.skip(f"the victim table {victim} is empty: deleting nothing is no disaster")
    undone = app_write(primary, db, 3)  # after the disaster: undone with it, by design
    tool.wait_archived(primary)

    rto = pgdr_measure.declare_disaster()
    target = RecoveryTarget.xid(accident.xid, inclusive=False)
    node = tool.restore(backup, target, stopwatch=rto)
    after = fingerprint(node, db)
    rto.stop("verify")
    assert_same(before, after, f"{tool.name}: {db} before the DELETE", sequences="at_least")
    assert after.rows(victim) == accident.deleted
    assert node.log.grep(f"recovery stopping before commit of transaction {accident.xid}")
    found = node.query(f"SELECT id FROM {ledger} ORDER BY id", dbname=db)
    assert [row[0] for row in found] == kept, f"exactly the commits before the DELETE, not {undone}"
    pgdr_measure.record_rpo(lost_commits=0)  # every commit before the disaster is back


def test_delta_restore_over_the_stopped_primary(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    if "delta" not in tool.capabilities:
        pytest.skip(f"{tool.name} {tool.version()} has no delta restore")
    primary = tool_primary(pgdr, tool, pgdr_data)
    primary.query(TABLE)
    insert_rows(primary, 1, 5000)
    team = fingerprint(primary, pgdr_data.dbname)
    backup = tool.backup(primary)
    primary.scalar("SELECT pg_create_restore_point('before_delete')")
    primary.scalar(DELETE)
    tool.wait_archived(primary)
    primary.stop()

    rto = pgdr_measure.declare_disaster()
    node = tool.restore(backup, RecoveryTarget.name("before_delete"), delta=primary, stopwatch=rto)
    assert node is primary
    assert ids(primary) == (5000, 1, 5000)
    assert_team_intact(team, primary, pgdr_data, "after the delta restore")
    rto.stop("verify")
    assert primary.timeline() == 2
    insert_rows(primary, 5001, 5001)


def test_backup_from_a_standby_restores(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    if "standby_backup" not in tool.capabilities:
        pytest.skip(f"{tool.name} {tool.version()} takes no backup from a standby here")
    primary = tool_primary(pgdr, tool, pgdr_data)
    primary.query(TABLE)
    insert_rows(primary, 1, 1000)
    team = fingerprint(primary, pgdr_data.dbname)
    standby = pgdr.replica(primary)
    pgdr.wait_caught_up(primary, standby)
    backup = tool.backup(primary, standby=standby)
    insert_rows(primary, 1001, 1500)
    tool.wait_archived(primary)

    rto = pgdr_measure.declare_disaster()
    node = tool.restore(backup, settings=INSPECT, stopwatch=rto)
    assert ids(node) == (1500, 1, 1500)
    assert_team_intact(team, node, pgdr_data, "from the standby's backup")
    rto.stop("verify")


def test_restore_after_a_switchover_follows_the_new_timeline(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    old = tool_primary(pgdr, tool, pgdr_data)
    old.query(TABLE)
    insert_rows(old, 1, 1000)
    team = fingerprint(old, pgdr_data.dbname)
    backup = tool.backup(old)
    standby = pgdr.replica(old, start=False)
    standby.conf.update(tool.wal_settings(standby))  # archives through the tool once promoted
    standby.start()
    insert_rows(old, 1001, 2000)
    pgdr.wait_caught_up(old, standby)
    old.stop()
    pgdr.promote(standby)
    tool.attach(standby)  # the tool now backs up and checks the new primary
    insert_rows(standby, 2001, 3000)
    tool.wait_archived(standby)
    assert standby.timeline() == 2

    rto = pgdr_measure.declare_disaster()
    node = tool.restore(backup, settings=INSPECT, stopwatch=rto)
    assert ids(node) == (3000, 1, 3000), f"{tool.name} must replay timeline 2 too"
    assert_team_intact(team, node, pgdr_data, "after the switchover")
    rto.stop("verify")
    assert node.timeline() >= 2


def test_dropped_table_copied_back_from_a_side_restore(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    primary = tool_primary(pgdr, tool, pgdr_data)
    primary.query(TABLE)
    insert_rows(primary, 1, 2000)
    primary.query("CREATE TABLE other (id int PRIMARY KEY)")
    team = fingerprint(primary, pgdr_data.dbname)
    backup = tool.backup(primary)
    primary.query("INSERT INTO other SELECT generate_series(1, 100)")
    primary.scalar("SELECT pg_create_restore_point('before_drop')")
    primary.query("DROP TABLE pitr_rows")
    primary.query("INSERT INTO other SELECT generate_series(101, 200)")  # must survive
    tool.wait_archived(primary)

    rto = pgdr_measure.declare_disaster()
    side = tool.restore(
        backup, RecoveryTarget.name("before_drop"), name="side", settings=INSPECT, stopwatch=rto
    )
    dump = side.run_tool("pg_dump", "-t", "pitr_rows", "-d", "postgres").stdout
    primary.psql(dump)
    rto.stop("copy the table back")

    assert ids(primary) == (2000, 1, 2000), "the dropped table is back, whole"
    assert primary.scalar("SELECT count(*) FROM other") == 200, "later writes are kept"
    assert_team_intact(team, side, pgdr_data, "in the side restore")
    assert_team_intact(team, primary, pgdr_data, "on the primary")
