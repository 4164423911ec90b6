"""A replication slot over ``max_slot_wal_keep_size`` (PostgreSQL src/test/recovery/t/
019_replslot_limit.pl).

The primary caps the WAL a slot may hold back. Its standby is down while the primary writes
and switches through more segments than the cap allows; the next checkpoint removes them and
invalidates the slot (``wal_status = 'lost'``, the primary's log says which slot and why).
Restarted, the standby cannot catch up from the primary: the WAL it needs is gone (its log
says so: PostgreSQL 13-17 "requested WAL segment ... has already been removed", 18 "can no
longer access replication slot ... invalidated"). With no archive to fall back on, the only
way back is a rebuild: a new base backup and a new slot, after which it holds exactly the
primary's database (fingerprint) and every marker row written while it was away. With an
archive, its ``restore_command`` fetches the removed segments instead and it catches up
without a rebuild (the log names the segments restored from the archive).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_pgdr import Measurement, Node, Topology, assert_same, fingerprint
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_rows, ledger_table

pytestmark = pytest.mark.pgdr

SLOT = "slot_standby"
# the cap, and nothing else keeping WAL: no wal_keep_size, no archive (archive=False below)
LIMIT = {"wal_keep_size": "0", "max_slot_wal_keep_size": "1MB"}
SEGMENTS = 4  # segments the primary moves through while the standby is away
WAL_STATUS = "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s"
INVALIDATED = rf'invalidating (obsolete replication )?slot "{SLOT}"'
RESTORED = r'restored log file "[0-9A-F]{24}" from archive'


def refused_line(major: int) -> str:
    """What the standby's log says when the primary no longer has the WAL it asks for."""
    if major >= 18:  # the walsender refuses the invalidated slot before reading any WAL
        return rf'can no longer access replication slot "{SLOT}"'
    return r"requested WAL segment [0-9A-F]{24} has already been removed"


def outrun_the_slot(primary: Node, dbname: str) -> list[int]:
    """Marker commits spread over ``SEGMENTS`` new segments, then a checkpoint: the WAL the
    stopped standby still needs is removed and its slot invalidated."""
    written: list[int] = []
    for _ in range(SEGMENTS):
        written += app_write(primary, dbname, 5)
        primary.switch_wal()
    primary.scalar("CHECKPOINT")
    return written


@dataclass
class LostSlot:
    """A primary that invalidated its stopped standby's slot, and what it wrote meanwhile."""

    primary: Node
    standby: Node
    ledger: str
    before: int  # marker rows the standby had when it stopped
    written: list[int]  # marker rows written while it was away
    invalidated: str  # the primary's log line
    offset: int  # the primary's log, from before the invalidation


def lose_the_slot(pgdr: Topology, data: TeamData, archive: bool) -> LostSlot:
    db = data.dbname
    primary = pgdr.primary(archive=archive, settings=LIMIT)
    data.load(primary)
    ledger = ledger_table(primary, db)
    standby = pgdr.replica(primary, name="standby")
    pgdr.wait_caught_up(primary, standby)
    assert primary.scalar(WAL_STATUS, [SLOT]) == "reserved"
    before = ledger_rows(standby, ledger, db)
    standby.stop()

    offset = primary.log.offset()
    written = outrun_the_slot(primary, db)
    status = primary.scalar(WAL_STATUS, [SLOT])
    assert status == "lost", f"slot {SLOT} is {status!r} after the checkpoint"
    invalidated = primary.log.grep(INVALIDATED, offset)
    assert invalidated, primary.log.tail(20, offset)
    line = invalidated[0].split("LOG:", 1)[-1].strip()
    return LostSlot(primary, standby, ledger, before, written, line, offset)


def test_lost_slot_standby_is_rebuilt(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    """No archive: the primary was the only source of the WAL, so the standby is rebuilt."""
    db = pgdr_data.dbname
    lost = lose_the_slot(pgdr, pgdr_data, archive=False)
    primary, standby, ledger, before = lost.primary, lost.standby, lost.ledger, lost.before
    written, offset = lost.written, lost.offset
    expected = fingerprint(primary, db)

    rto = pgdr_measure.declare_disaster()
    standby_offset = standby.log.offset()
    standby.start()  # a hot standby again, on its own WAL, asking the primary for more
    refused = poll(
        lambda: standby.log.grep(refused_line(pgdr.major), standby_offset),
        "the primary to refuse the standby the WAL it removed",
        log_tail=lambda: standby.log.tail(20, standby_offset),
    )
    rto.lap("refused by the primary")
    assert ledger_rows(standby, ledger, db) == before, "the standby got WAL the primary removed"
    assert standby.lsn("replay") < primary.lsn()
    standby.stop()
    pgdr.rebuild(standby, primary)
    rto.lap("rebuild")
    pgdr.wait_caught_up(primary, standby)
    rto.lap("catch up")
    actual = fingerprint(standby, db)
    rto.stop("verify")

    assert_same(expected, actual, "the rebuilt standby")
    present = standby.query(f"SELECT id FROM {ledger} WHERE id = ANY(%s)", [written], dbname=db)
    pgdr_measure.record_rpo(lost_commits=len(written) - len(present))
    expected = before + len(written)
    assert ledger_rows(standby, ledger, db) == expected == ledger_rows(primary, ledger, db)
    assert primary.scalar(WAL_STATUS, [SLOT]) == "reserved", "the new slot holds WAL again"
    pgdr_measure.record("primary", lost.invalidated)
    pgdr_measure.record("standby", refused[0].split("FATAL:", 1)[-1].strip())
    pgdr_measure.attach_log(primary, offset, pattern=INVALIDATED)
    pgdr_measure.attach_log(standby, standby_offset, pattern=refused_line(pgdr.major))


def test_lost_slot_standby_catches_up_from_the_archive(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    """With the archive: the standby's restore_command fetches the segments the primary
    removed, and it replays every marker row without a rebuild."""
    db = pgdr_data.dbname
    lost = lose_the_slot(pgdr, pgdr_data, archive=True)
    primary, standby = lost.primary, lost.standby
    end = primary.switch_wal()  # the checkpoint's record too, into the archive
    last = pgdr.wait_archived(primary, end)
    expected = fingerprint(primary, db)

    rto = pgdr_measure.declare_disaster()
    standby_offset = standby.log.offset()
    standby.start()
    pgdr.wait_replayed(standby, end)  # all the archive holds (it may not stream again)
    rto.lap("replay from the archive")
    actual = fingerprint(standby, db)
    rto.stop("verify")

    restored = standby.log.grep(RESTORED, standby_offset)
    assert restored, standby.log.tail(20, standby_offset)
    assert any(last in line for line in restored), f"{last} not restored from the archive"
    # a sequence replayed from WAL stands at its last logged value (up to 32 ahead)
    assert_same(expected, actual, "the standby caught up from the archive", sequences="at_least")
    present = ledger_rows(standby, lost.ledger, db)
    pgdr_measure.record_rpo(lost_commits=lost.before + len(lost.written) - present)
    assert present == lost.before + len(lost.written) == ledger_rows(primary, lost.ledger, db)
    pgdr_measure.record("primary", lost.invalidated)
    pgdr_measure.record("segments restored from the archive", len(restored))
