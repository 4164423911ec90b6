"""Crash restart versus failover (Patroni's acceptance test ``recovery.feature``; PostgreSQL
src/test/recovery/t/004_timeline_switch.pl for the failover half).

The same disaster, a primary whose postmaster is SIGKILLed (``faults.crash``: the host kills
the server's processes), handled both ways while an application writes (``Writer``) and a
synchronous standby confirms every commit:

1. restart in place: crash recovery replays the primary's own WAL; it comes back on the same
   timeline with every acknowledged commit;
2. failover: the standby is promoted onto a new timeline, with every acknowledged commit.

Both recovery times are recorded side by side (figures ``RTO crash restart`` and
``RTO failover``; the drill's RTO is the failover's), and the team's database is exactly what
it was (fingerprint) after each.
"""

from __future__ import annotations

import psycopg
import pytest

from pytest_pgdr import (
    Fingerprint,
    Measurement,
    Node,
    Topology,
    Writer,
    assert_same,
    faults,
    fingerprint,
)
from pytest_pgdr.basics.clock import Stopwatch
from pytest_pgdr.drill.teamdata import DRILL_SCHEMA, TeamData, ledger_table

pytestmark = pytest.mark.pgdr

RATE = 50  # writer commits per second
PROBE = f"{DRILL_SCHEMA}.probe"
CRASH_RECOVERY = r"database system was not properly shut down; automatic recovery in progress"


def assert_down(node: Node) -> None:
    """The server has exited (its host saw it go) and nobody can connect."""
    assert not node.is_running(), f"{node.name} is still running"
    with pytest.raises(psycopg.OperationalError):
        node.connect().close()


def probe_ids(node: Node, dbname: str) -> set[int]:
    return {row[0] for row in node.query(f"SELECT id FROM {PROBE}", dbname=dbname)}


def assert_team_data(expected: Fingerprint, node: Node, dbname: str, what: str) -> None:
    """The team's database is exactly as before; the probe rows are checked on their own."""
    actual = fingerprint(node, dbname)
    assert_same(expected, actual.merged(expected.only(PROBE)), what)


def restart_in_place(primary: Node, writer: Writer) -> Stopwatch:
    """Crash the primary, start it again on its own data directory; timed to the first
    commit acknowledged after it came back."""
    clock = Stopwatch.started(writer.clock)
    assert clock.started_at is not None
    faults.crash(primary).start()
    assert_down(primary)
    clock.lap("fence")
    primary.start()
    clock.lap("crash recovery")
    writer.wait_for_acks(1, after=clock.started_at)
    clock.stop("first write")
    return clock


def test_crash_restart_versus_failover(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary()
    pgdr_data.load(primary)
    ledger_table(primary, db)  # the drills' schema, for the writer's probe table
    standby = pgdr.replica(primary, name="standby", sync=True)
    primary.poll_query(
        "SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'",
        "standby to be synchronous",
    )
    with Writer(lambda: [primary, standby], rate=RATE, table=PROBE, dbname=db) as writer:
        writer.wait_for_acks(20)
        expected = fingerprint(primary, db)
        offset = primary.log.offset()
        restart = restart_in_place(primary, writer)
        assert primary.timeline() == 1, "a restart in place stays on its timeline"
        assert primary.log.grep(CRASH_RECOVERY, offset), primary.log.tail(20, offset)
        assert writer.lost_commits(primary) == [], "crash recovery lost acknowledged commits"
        assert_team_data(expected, primary, db, "the team's database after the crash restart")
        restart_outage = writer.outage(fault_at=restart.started_at)
        writer.wait_for_acks(RATE // 5, since=writer.clock())
        pgdr.wait_caught_up(primary, standby)

        rto = pgdr_measure.declare_disaster()
        faults.crash(primary).start()
        assert_down(primary)
        rto.lap("fence old primary")
        pgdr.promote(standby)
        rto.lap("promote")
        writer.wait_for_acks(1, after=rto.started_at)
        rto.stop("first write")

    acked = {a.id for a in writer.acks}
    present = probe_ids(standby, db)
    assert writer.lost_commits(standby) == [], "the failover lost acknowledged commits"
    assert present - acked <= set(writer.ledger.unacknowledged), "rows nobody wrote"
    assert standby.timeline() == 2
    assert_team_data(expected, standby, db, "the team's database after the failover")
    pgdr_measure.figure("RTO crash restart", round(restart.total, 4), "s")
    pgdr_measure.figure("RTO failover", round(rto.total, 4), "s")
    pgdr_measure.record("crash restart phases", restart.as_dict()["phases"])
    pgdr_measure.record("crash restart outage (s)", restart_outage.seconds)
    pgdr_measure.record_outage(writer.outage(fault_at=rto.started_at))
    pgdr_measure.record_rpo(writer.rpo(standby))
