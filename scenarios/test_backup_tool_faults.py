"""A damaged repository is caught before the disaster, by the tool's verify and by its restore.

One byte of a backup file altered: the tool's verify names the file and a restore of that
backup refuses, each with the tool's own message. One archived WAL segment removed: verify
(or the continuity check over the tool's own info) names it, and a restore that needs it
fails loudly instead of promoting with partial data.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import PgdrError, RecoveryTarget, Topology
from pytest_pgdr.backup import BackupTool, BackupToolError, Health
from pytest_pgdr.drill.teamdata import TeamData

from .backup_tool_common import INSPECT, TABLE, insert_rows, tool_primary

pytestmark = pytest.mark.pgdr


def flip_byte(path: object) -> None:
    """Flip one byte in the middle of a file (same size, new content)."""
    with open(str(path), "r+b") as fh:
        size = fh.seek(0, 2)
        fh.seek(size // 2)
        byte = fh.read(1)
        fh.seek(size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_tampered_backup_is_caught_by_verify_and_by_restore(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData
) -> None:
    tool = pgdr_backup_tool
    primary = tool_primary(pgdr, tool, pgdr_data)
    primary.query(TABLE)
    insert_rows(primary, 1, 20_000)
    backup = tool.backup(primary)
    tool.verify(backup)  # passes while intact

    files = [p for p in tool.backup_files(backup) if "/base/" in str(p)]
    victim = max(files, key=lambda p: p.stat().st_size)
    flip_byte(victim)

    with pytest.raises(BackupToolError) as verified:
        tool.verify(backup)
    assert victim.name.split(".")[0] in str(verified.value), "verify must name the file"
    with pytest.raises(PgdrError) as restored:
        tool.restore(backup, RecoveryTarget.immediate(), settings=INSPECT)
    assert "says:" in str(restored.value), "the tool's own message must be quoted"


def test_missing_wal_is_caught_by_verify_and_by_restore(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData
) -> None:
    tool = pgdr_backup_tool
    primary = tool_primary(pgdr, tool, pgdr_data)
    primary.query(TABLE)
    backup = tool.backup(primary)
    lsn = ""
    for batch in range(3):
        insert_rows(primary, batch * 1000 + 1, batch * 1000 + 1000)
        if batch == 1:  # a target inside the segment that goes missing
            lsn = primary.scalar("SELECT pg_current_wal_lsn()::text")
        tool.wait_archived(primary)
    victim = tool.info().wal[-2]
    path = tool.wal_path(victim)
    assert path is not None, f"{tool.name} must hold {victim}"
    path.unlink()

    health = Health.of(tool.info())
    assert (victim, victim) in health.gaps, "the tool's own info shows the hole"
    with pytest.raises(BackupToolError, match="(?i)missing|gap"):
        tool.verify()
    with pytest.raises(PgdrError) as restored:
        tool.restore(backup, RecoveryTarget.lsn(lsn), settings=INSPECT)
    assert restored.value.log_lines, "the failure shows the server's or the tool's own lines"
    with pytest.raises(PgdrError):
        tool.restore(backup, settings=INSPECT)  # to the end: never partial data
