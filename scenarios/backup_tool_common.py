"""What the backup-tool drills share: a primary archiving through the tool, and the history of
rows and recovery targets (PostgreSQL's 003_recovery_targets.pl).

Each drill runs once per tool in ``--pgdr-backup-tool`` (``pgdr_backup_tool`` in the ini file,
``PGDR_BACKUP_TOOL``; comma-separated names, ``installed`` or ``all``; default ``installed``),
through the plugin's ``pgdr_backup_tool`` fixture. A tool named but not installed is skipped
with a reason that says how to get it (a failure in strict mode); one that refuses this
PostgreSQL is skipped naming its version.

The primary holds the team's database (``pgdr_data``), untouched after the backup: every
restore must give back its whole fingerprint. The drills' marker rows (``pitr_rows``) live in
the ``postgres`` database, apart from it, so each target can be checked by its exact rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_pgdr import Fingerprint, Node, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.backup import BackupTool, ToolBackup
from pytest_pgdr.drill.teamdata import TeamData

INSPECT = {"archive_mode": "off"}  # restores only inspected stay out of the repository
TABLE = "CREATE TABLE pitr_rows (id int PRIMARY KEY, note text NOT NULL)"


def tool_primary(pgdr: Topology, tool: BackupTool, data: TeamData) -> Node:
    """A primary holding the team's database, archiving through ``tool`` (stanza or server
    entry created, checked)."""
    primary = pgdr.primary()
    data.load(primary)
    tool.attach(primary)
    return primary


def assert_team_intact(expected: Fingerprint, node: Node, data: TeamData, what: str) -> None:
    """The team's whole database on ``node`` is exactly what it was at the backup."""
    assert_same(expected, fingerprint(node, data.dbname), f"{data.dbname} {what}")


def insert_rows(node: Node, first: int, last: int) -> None:
    node.query(
        "INSERT INTO pitr_rows SELECT g, 'row ' || g FROM generate_series(%s::int, %s::int) g",
        [first, last],
    )


def ids(node: Node) -> tuple[int, int, int]:
    """(count, min, max) of the ids: with a primary key, N rows 1..N are exactly ids 1..N."""
    count, low, high = node.query("SELECT count(*), min(id), max(id) FROM pitr_rows")[0]
    return int(count), int(low or 0), int(high or 0)


@dataclass(frozen=True)
class History:
    """One backup through the tool, then rows 1001..6000 with a target noted between batches."""

    backup: ToolBackup
    xid: str  # the transaction that inserted 1001..2000
    time: str  # server time after 3000 rows
    name: str  # restore point after 4000 rows
    lsn: str  # WAL location after 5000 rows
    team: Fingerprint  # the team's database at the backup (not written to afterwards)


def build_history(pgdr: Topology, tool: BackupTool, data: TeamData) -> tuple[Node, History]:
    primary = tool_primary(pgdr, tool, data)
    primary.query(TABLE)
    insert_rows(primary, 1, 1000)
    team = fingerprint(primary, data.dbname)
    backup = tool.backup(primary)
    xid = primary.scalar(
        "WITH batch AS (INSERT INTO pitr_rows SELECT g, 'row ' || g"
        " FROM generate_series(1001, 2000) g) SELECT pg_current_xact_id()::text"
    )
    insert_rows(primary, 2001, 3000)
    when = primary.scalar("SELECT now()")
    insert_rows(primary, 3001, 4000)
    primary.scalar("SELECT pg_create_restore_point('my_target')")
    insert_rows(primary, 4001, 5000)
    lsn = primary.scalar("SELECT pg_current_wal_lsn()::text")
    insert_rows(primary, 5001, 6000)
    tool.wait_archived(primary)
    history = History(backup, str(xid), when.isoformat(), "my_target", str(lsn), team)
    return primary, history


def targets(h: History) -> dict[str, tuple[RecoveryTarget, int]]:
    """Each target and the exact row count it must give."""
    return {
        "immediate": (RecoveryTarget.immediate(), 1000),
        "xid_exclusive": (RecoveryTarget.xid(h.xid, inclusive=False), 1000),
        "xid": (RecoveryTarget.xid(h.xid), 2000),
        "time": (RecoveryTarget.time(h.time), 3000),
        "name": (RecoveryTarget.name(h.name), 4000),
        "lsn": (RecoveryTarget.lsn(h.lsn), 5000),
    }
