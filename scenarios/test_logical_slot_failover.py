"""Logical replication slots across a failover (PostgreSQL src/test/recovery
040_standby_failover_slots_sync; Patroni issue 1749 and Debezium's lost-slot reports).

A logical consumer (``test_decoding`` through ``pg_logical_slot_get_changes``) reads the
drills' marker commits from the team's database. The primary dies and its standby is promoted:

* PostgreSQL 17+, the slot created with ``failover = true``, the standby with
  ``sync_replication_slots = on``, ``hot_standby_feedback = on`` and a ``primary_slot_name``
  that the primary lists in ``synchronized_standby_slots``: the slot is on the promoted
  standby, and the consumer goes on reading exactly where it stopped: every marker committed
  after its last read, none it had already seen;
* a slot without failover (every slot before PostgreSQL 17): the promoted standby has no
  such slot. The consumer must be re-created from a new snapshot, and the changes committed
  between its last read and the failover never reach it. The drill says so in its report.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from pytest_pgdr import Measurement, Node, Topology, assert_same, fingerprint
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr

SLOT = "pgdr_consumer"
READ, UNREAD, AFTER = 30, 20, 15  # markers read before the failover, not yet read, written after
NUDGE_SECONDS = 0.3
INSERTED = re.compile(r"^table pgdr_drill\.writes: INSERT: id\[bigint\]:(\d+) ")


@dataclass
class Cluster:
    primary: Node
    standby: Node
    db: str
    ledger: str


def build(pgdr: Topology, data: TeamData, failover: bool) -> Cluster:
    primary = pgdr.primary(settings={"wal_level": "logical"})
    data.load(primary)
    ledger = ledger_table(primary, data.dbname)
    sync = {"sync_replication_slots": True, "hot_standby_feedback": True} if failover else {}
    standby = pgdr.replica(primary, name="standby", settings=sync)
    if failover:  # set after the standby was built, which would inherit it
        primary.configure(synchronized_standby_slots="slot_standby")
        primary.reload()
    extra = ", failover => true" if failover else ""
    primary.scalar(
        f"SELECT pg_create_logical_replication_slot('{SLOT}', 'test_decoding'{extra})",
        dbname=data.dbname,
    )
    return Cluster(primary, standby, data.dbname, ledger)


def consume(node: Node, db: str) -> list[int]:
    """What the consumer reads (and confirms): the marker ids inserted, in order."""
    rows = node.query(
        "SELECT data FROM pg_logical_slot_get_changes(%s, NULL, NULL)", [SLOT], dbname=db
    )
    return [int(m.group(1)) for (text,) in rows if (m := INSERTED.match(str(text)))]


def synced_sql(flushed: str) -> str:
    return (
        "SELECT synced AND NOT temporary AND confirmed_flush_lsn >= "
        f"'{flushed}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{SLOT}'"
    )


def confirmed(c: Cluster) -> str:
    return str(
        c.primary.scalar(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            [SLOT],
        )
    )


def first_copy(c: Cluster) -> None:
    """Until the standby holds a persistent copy of the slot.

    The standby copies a slot only once the slot's catalog_xmin is past the oldest transaction
    the standby can still keep rows for ("could lead to data loss" in its log). A checkpoint
    logs and flushes a snapshot of running transactions; the consumer decoding it (nothing
    new to read) moves catalog_xmin up. Nudge that way until the copy is made.
    """
    nudged = [0.0]

    def copied() -> bool:
        if c.standby.try_scalar(synced_sql(confirmed(c))):
            return True
        if time.monotonic() - nudged[0] > NUDGE_SECONDS:
            c.primary.scalar("CHECKPOINT")
            assert consume(c.primary, c.db) == [], "no marker is written while waiting"
            c.standby.scalar("SELECT pg_reload_conf()")  # wakes the napping slot sync worker
            nudged[0] = time.monotonic()
        return False

    poll(copied, f"the standby's first copy of slot {SLOT}", log_tail=c.standby.log.tail)


def wait_slot_synced(c: Cluster) -> None:
    """Until the standby's copy is confirmed where the primary's is."""
    flushed = confirmed(c)
    c.standby.scalar("SELECT pg_reload_conf()")  # wakes the slot sync worker
    c.standby.poll_query(
        synced_sql(flushed), f"the standby's copy of slot {SLOT} to be synchronized up to {flushed}"
    )


def test_failover_slot_resumes_without_gap_or_duplicate(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    pgdr.require(
        17, "A logical slot that survives failover (failover = true, sync_replication_slots)"
    )
    c = build(pgdr, pgdr_data, failover=True)
    read = app_write(c.primary, c.db, READ)
    assert consume(c.primary, c.db) == read
    pgdr.wait_caught_up(c.primary, c.standby)
    first_copy(c)
    unread = app_write(c.primary, c.db, UNREAD)
    pgdr.wait_caught_up(c.primary, c.standby)
    wait_slot_synced(c)
    expected = fingerprint(c.primary, c.db)

    c.primary.crash()
    rto = pgdr_measure.declare_disaster()
    pgdr.promote(c.standby)
    rto.lap("promote")
    resumed = consume(c.standby, c.db)
    rto.lap("consumer resumes on the new primary")
    actual = fingerprint(c.standby, c.db)
    rto.stop("verify")
    after = app_write(c.standby, c.db, AFTER)
    later = consume(c.standby, c.db)

    assert resumed == unread, f"no gap, no duplicate: read {resumed}, expected {unread}"
    assert later == after
    seen = read + resumed + later
    assert len(seen) == len(set(seen)) == READ + UNREAD + AFTER
    assert_same(expected, actual, "the promoted standby", sequences="at_least")
    pgdr_measure.record("changes_resumed_after_failover", len(resumed))
    pgdr_measure.context["logical_slot"] = f"failover slot {SLOT} kept: no gap, no duplicate"


def test_slot_without_failover_is_lost_at_promotion(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    c = build(pgdr, pgdr_data, failover=False)
    read = app_write(c.primary, c.db, READ)
    assert consume(c.primary, c.db) == read
    unread = app_write(c.primary, c.db, UNREAD)
    pgdr.wait_caught_up(c.primary, c.standby)
    expected = fingerprint(c.primary, c.db)

    c.primary.crash()
    rto = pgdr_measure.declare_disaster()
    pgdr.promote(c.standby)
    rto.lap("promote")
    slots = c.standby.query(
        "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical'"
    )
    actual = fingerprint(c.standby, c.db)
    rto.stop("verify")

    assert slots == [], f"the promoted standby has logical slots: {slots}"
    assert_same(expected, actual, "the promoted standby", sequences="at_least")
    why = (
        f"PostgreSQL {pgdr.major} has no failover slots (they came in 17)"
        if pgdr.major < 17
        else "the slot was created without failover = true"
    )
    pgdr_measure.context["logical_slot"] = (
        f"slot {SLOT} LOST at promotion: {why}; the consumer must be re-created from a new"
        f" snapshot, and the {len(unread)} changes committed after its last read never reach it"
    )
    pgdr_measure.record("changes_never_delivered", len(unread))
