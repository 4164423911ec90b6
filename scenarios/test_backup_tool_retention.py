"""Retention and health through each tool: what expire keeps is restorable; a stale backup or
a broken WAL chain is seen from the tool's own info, before anyone needs a restore."""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, RecoveryTarget, Topology, fingerprint
from pytest_pgdr.backup import BackupTool, BackupToolError, Health
from pytest_pgdr.drill.teamdata import TeamData

from .backup_tool_common import INSPECT, TABLE, assert_team_intact, ids, insert_rows, tool_primary

pytestmark = pytest.mark.pgdr


def test_expire_leaves_every_reported_backup_restorable(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    primary = tool_primary(pgdr, tool, pgdr_data)
    primary.query(TABLE)
    team = fingerprint(primary, pgdr_data.dbname)
    taken = []
    for batch in range(3):
        insert_rows(primary, batch * 1000 + 1, batch * 1000 + 1000)
        taken.append(tool.backup(primary))
    insert_rows(primary, 3001, 3500)
    tool.wait_archived(primary)

    removed = tool.expire(keep_full=2)
    assert removed == [taken[0].id], f"{tool.name} must expire exactly the oldest full backup"
    kept = tool.info().backups
    assert [b.id for b in kept] == [b.id for b in taken[1:]]

    rto = pgdr_measure.declare_disaster()
    for number, backup in enumerate(kept, start=2):
        node = tool.restore(backup, RecoveryTarget.immediate(), settings=INSPECT)
        assert ids(node) == (number * 1000, 1, number * 1000), f"backup {backup.id}"
        assert_team_intact(team, node, pgdr_data, f"from kept backup {backup.id}")
        rto.lap(f"restore kept backup {number - 1}")
    latest = tool.restore(kept[0], settings=INSPECT)
    assert ids(latest) == (3500, 1, 3500), "the WAL after the oldest kept backup is all there"
    assert_team_intact(team, latest, pgdr_data, "from the oldest kept backup, to the end")
    rto.stop("restore oldest kept to the end")
    pgdr_measure.record("expired", removed)


def test_freshness_and_continuity_from_the_tools_info(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    primary = tool_primary(pgdr, tool, pgdr_data)
    primary.query(TABLE)
    with pytest.raises(BackupToolError, match="no backup"):
        Health.of(tool.info()).check(max_backup_age_s=3600)
    backup = tool.backup(primary)
    for batch in range(3):
        insert_rows(primary, batch * 1000 + 1, batch * 1000 + 1000)
        tool.wait_archived(primary)

    health = Health.of(tool.info())
    health.check(max_backup_age_s=3600)
    for name, (value, unit) in health.figures().items():
        pgdr_measure.figure(name, value, unit)
    assert health.newest_backup == backup.id and health.gaps == ()
    assert health.newest_backup_age_s is not None and 0 <= health.newest_backup_age_s < 3600

    stale = Health.of(tool.info(), now=backup.stopped + 7200)
    with pytest.raises(BackupToolError, match="over the budget"):
        stale.check(max_backup_age_s=3600)
    victim = tool.info().wal[-2]
    path = tool.wal_path(victim)
    assert path is not None
    path.unlink()
    with pytest.raises(BackupToolError, match=f"WAL {victim} is missing"):
        Health.of(tool.info()).check(max_backup_age_s=3600)
