"""The PITR matrix (PostgreSQL's 003_recovery_targets.pl), its actions, and timeline switches.

One base backup, then six batches of 1000 rows with a recovery target noted between them:
the xid of the batch 1001..2000, the server time after 3000 rows, a restore point after 4000
rows, an LSN after 5000 rows. Restoring the one backup to each target gives exactly the rows
1..N, and the server's log names the stop it made.

The primary holds the team's database (``pgdr_data``), untouched after the backup: every
restored node must give back its whole fingerprint. The marker rows live in ``postgres``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
import pytest

from pytest_pgdr import (
    Backup,
    Fingerprint,
    Measurement,
    Node,
    RecoveryError,
    RecoveryTarget,
    Topology,
    assert_same,
    fingerprint,
)
from pytest_pgdr.drill.teamdata import TeamData

pytestmark = pytest.mark.pgdr

# Restores that are only inspected do not archive: their new timelines stay out of the archive
# that production (and the other restores of the drill) share.
INSPECT = {"archive_mode": "off"}
TABLE = "CREATE TABLE pitr_rows (id int PRIMARY KEY, note text NOT NULL)"


@dataclass(frozen=True)
class History:
    """The backup and the targets noted while rows 1..6000 were written."""

    backup: Backup
    xid: str  # the transaction that inserted 1001..2000
    time: str  # server time after 3000 rows
    name: str  # restore point after 4000 rows
    lsn: str  # WAL location after 5000 rows
    team: Fingerprint  # the team's database, not written to after the backup


@dataclass(frozen=True)
class Case:
    target: RecoveryTarget
    rows: int
    log: str


def insert_rows(node: Node, first: int, last: int) -> None:
    node.query(
        "INSERT INTO pitr_rows SELECT g, 'row ' || g FROM generate_series(%s::int, %s::int) g",
        [first, last],
    )


def ids(node: Node) -> tuple[int, int, int]:
    """(count, min, max) of the ids: with a primary key, N rows 1..N are exactly ids 1..N."""
    count, low, high = node.query("SELECT count(*), min(id), max(id) FROM pitr_rows")[0]
    return int(count), int(low or 0), int(high or 0)


def build_history(pgdr: Topology, data: TeamData) -> tuple[Node, History]:
    primary = pgdr.primary()
    data.load(primary)
    primary.query(TABLE)
    insert_rows(primary, 1, 1000)
    team = fingerprint(primary, data.dbname)
    backup = pgdr.backup(primary)
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
    pgdr.wait_archived(primary)
    return primary, History(backup, str(xid), when.isoformat(), "my_target", str(lsn), team)


def assert_team_intact(h: History, node: Node, data: TeamData, what: str) -> None:
    assert_same(h.team, fingerprint(node, data.dbname), f"{data.dbname} {what}")


def matrix(h: History) -> dict[str, Case]:
    return {
        "immediate": Case(
            RecoveryTarget.immediate(), 1000, "recovery stopping after reaching consistency"
        ),
        "xid_exclusive": Case(
            RecoveryTarget.xid(h.xid, inclusive=False),
            1000,
            f"recovery stopping before commit of transaction {h.xid}",
        ),
        "xid": Case(
            RecoveryTarget.xid(h.xid),
            2000,
            f"recovery stopping after commit of transaction {h.xid}",
        ),
        "time": Case(
            RecoveryTarget.time(h.time),
            3000,
            r"recovery stopping before commit of transaction \d+, time ",
        ),
        "name": Case(
            RecoveryTarget.name(h.name), 4000, f'recovery stopping at restore point "{h.name}"'
        ),
        "lsn": Case(
            RecoveryTarget.lsn(h.lsn),
            5000,
            re.escape(f'recovery stopping after WAL location (LSN) "{h.lsn}"'),
        ),
    }


def test_each_target_restores_exactly_its_rows(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    primary, h = build_history(pgdr, pgdr_data)
    assert ids(primary) == (6000, 1, 6000)
    cases = matrix(h)

    rto = pgdr_measure.declare_disaster()
    nodes = {
        key: pgdr.restore(h.backup, case.target, name=f"to_{key}", settings=INSPECT, wait=False)
        for key, case in cases.items()
    }
    for key, node in nodes.items():
        pgdr.wait_recovery(node, cases[key].target)
    rto.lap(f"restore {len(nodes)} targets in parallel")
    found = {key: ids(node) for key, node in nodes.items()}
    for key, node in nodes.items():
        assert_team_intact(h, node, pgdr_data, f"restored to {key}")
    rto.stop("verify")

    expected = {key: (case.rows, 1, case.rows) for key, case in cases.items()}
    assert found == expected, "each target must give exactly ids 1..N"
    for key, node in nodes.items():
        assert node.log.grep(cases[key].log), f"{key}: log lacks {cases[key].log!r}"
        assert node.timeline() == 2, f"{key}: promotion must start timeline 2"
        insert_rows(node, 100_001, 100_001)  # promoted: writable
    pgdr_measure.record("targets_restored", len(nodes))


def test_pause_then_resume_and_shutdown_actions(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    _, h = build_history(pgdr, pgdr_data)
    pause = RecoveryTarget.name(h.name, action="pause")
    shutdown = RecoveryTarget.lsn(h.lsn, action="shutdown")
    rto = pgdr_measure.declare_disaster()
    paused = pgdr.restore(
        h.backup, pause, name="paused", settings=INSPECT, stopwatch=rto, wait=False
    )
    stopped = pgdr.restore(h.backup, shutdown, name="stopped", settings=INSPECT, wait=False)
    pgdr.wait_recovery(paused, pause, stopwatch=rto)
    check_paused_is_read_only(paused)
    assert_team_intact(h, paused, pgdr_data, "while paused at the target")
    rto.lap("inspect while paused")
    paused.scalar("SELECT pg_wal_replay_resume()")
    pgdr.wait_promoted(paused)
    rto.stop("resume and promote")
    pgdr.wait_recovery(stopped, shutdown)
    assert ids(paused) == (4000, 1, 4000), "resume at the target promotes, replays no further"
    assert paused.timeline() == 2
    insert_rows(paused, 100_001, 100_001)

    assert not stopped.is_running(), "action 'shutdown' must stop the server by itself"
    assert stopped.exit_code() == 0
    assert stopped.log.grep("shutdown at recovery target")
    offset = stopped.log.offset()
    stopped.configure(recovery_target_action="pause")
    stopped.start(wait=False)
    pgdr.wait_recovery(stopped, RecoveryTarget.lsn(h.lsn, action="pause"), offset)
    assert ids(stopped) == (5000, 1, 5000), "the shut-down node is at the LSN target"
    assert_team_intact(h, stopped, pgdr_data, "after a shutdown at the target")


def check_paused_is_read_only(node: Node) -> None:
    assert node.in_recovery()
    assert node.replay_pause_state() == "paused"
    assert ids(node) == (4000, 1, 4000)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only transaction"):
        insert_rows(node, 100_001, 100_001)


def test_later_pitr_follows_the_timeline_switch(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    _, h = build_history(pgdr, pgdr_data)
    tl2 = pgdr.restore(h.backup, RecoveryTarget.name(h.name), name="tl2")
    assert tl2.timeline() == 2
    pgdr.wait_history_archived(2)
    history = pgdr.host.read_text(pgdr.archive.wal / "00000002.history")
    assert re.match(rf'1\t[0-9A-F]+/[0-9A-F]+\tat restore point "{h.name}"', history), history
    insert_rows(tl2, 10_001, 10_500)
    tl2.scalar("SELECT pg_create_restore_point('on_tl2')")
    insert_rows(tl2, 10_501, 11_000)
    pgdr.wait_archived(tl2)

    rto = pgdr_measure.declare_disaster()
    on_tl2 = RecoveryTarget.name("on_tl2")
    stuck_on_tl1 = RecoveryTarget("name", "on_tl2", timeline="1")
    later = pgdr.restore(h.backup, on_tl2, name="later", settings=INSPECT, stopwatch=rto)
    rows = later.query(
        "SELECT count(*), max(id), count(*) FILTER (WHERE id BETWEEN 4001 AND 6000) FROM pitr_rows"
    )[0]
    rto.stop("verify")

    assert rows == (4500, 10_500, 0), "TL1 up to my_target, then TL2 up to on_tl2"
    assert later.log.grep('recovery stopping at restore point "on_tl2"')
    assert later.timeline() == 3, "the archive holds timeline 2, so promotion picks 3"
    assert_team_intact(h, later, pgdr_data, "across the timeline switch")
    with pytest.raises(RecoveryError, match="recovery ended before configured recovery target"):
        pgdr.restore(h.backup, stuck_on_tl1, name="tl1_only", settings=INSPECT)
