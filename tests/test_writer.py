"""The background writer: rate, bounds, failover following, write outage and RPO.

The ledger arithmetic is tested on fabricated acknowledgements; the rest against real servers
(run with ``--pgdr``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pytest_pgdr import RecoveryError, WaitTimeout
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.drill.writer import Ack, Writer, loss_window

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ack(i: int, t: float, timeline: int = 1, node: str = "primary") -> Ack:
    return Ack(i, t, T0 + timedelta(seconds=t), timeline, node, f"0/{i:X}000")


def fake_writer(
    acks: list[Ack], failures: tuple[tuple[int | None, float], ...] = (), rate: float = 100
) -> Writer:
    """A writer that never ran, with a fabricated ledger: ``failures`` are (row id, time)."""
    w = Writer([], rate=rate)
    w.ledger.acks.extend(acks)
    for row_id, t in failures:
        w.ledger.record_failure(t, row_id, "primary", "server closed the connection")
    w._next_id = max(a.id for a in acks) + 1
    w.stopped_at = max([acks[-1].client_t, *(t for _, t in failures)])
    return w


# the ledger, without servers --------------------------------------------------------------
def test_outage_runs_from_the_fault_to_the_first_write_after_recovery() -> None:
    w = fake_writer(
        [ack(1, 1.0), ack(2, 1.1), ack(5, 3.6, 2, "replica"), ack(6, 3.7, 2)],
        failures=((3, 1.2), (4, 2.0)),
    )
    outage = w.outage(fault_at=1.15)
    assert outage.seconds == pytest.approx(2.45)
    assert outage.server_gap_s == pytest.approx(2.5)
    assert (outage.last_before.id, outage.first_after.id) == (2, 5)
    data = outage.as_dict(origin=1.15)
    assert data["start_s"] == pytest.approx(0) and data["end_s"] == pytest.approx(2.45)
    assert data["failed_attempts"] == 2 and data["first_after"]["timeline"] == 2


def test_in_flight_acks_of_the_dying_primary_do_not_end_the_outage() -> None:
    """At 500 commits/s a ``docker kill`` lets the old primary acknowledge ~75 more commits:
    the outage ends with the new primary's first, not with the old one's next."""
    dying = [ack(i, 1.0 + i * 0.002) for i in range(1, 80)]  # fault at 1.05: ids 26..79 after
    acks = [*dying, ack(81, 1.35, 2, "replica"), ack(82, 1.352, 2, "replica")]
    w = fake_writer(acks, failures=((80, 1.17), (None, 1.2)), rate=500)
    outage = w.outage(fault_at=1.05)
    assert outage.first_after.node == "replica" and outage.seconds == pytest.approx(0.3)
    assert outage.acked_after_fault == 54 and outage.last_old.id == 79
    assert w.wait_for_acks(1, after=1.05).id == 81
    assert w.wait_for_acks(2, after=1.05).id == 82
    assert w.wait_for_acks(3, since=1.05).id == 28  # every ack, in flight or not


def test_outage_nobody_could_see_is_unknown_not_small() -> None:
    steady = [ack(i, 1.0 + i * 0.002) for i in range(1, 100)]
    w = fake_writer(steady, rate=500)
    outage = w.outage(fault_at=1.05)
    assert outage.seconds is None and not outage.observed and outage.recovered
    assert outage.as_dict()["seconds"] is None and outage.as_dict()["observed"] is False
    with pytest.raises(WaitTimeout, match="never went away"):
        w.wait_for_acks(1, after=1.05, timeout=0.01)


def test_outage_of_a_frozen_server_is_the_gap_without_failures() -> None:
    acks = [ack(1, 1.0), ack(2, 1.02), ack(3, 1.04), ack(4, 2.5), ack(5, 2.52)]
    w = fake_writer(acks, rate=50)
    outage = w.outage(fault_at=1.03)
    assert outage.first_after.id == 4 and outage.seconds == pytest.approx(1.47)
    assert outage.acked_after_fault == 1 and outage.attempts_failed == 0
    assert w.wait_for_acks(1, after=1.03).id == 4


def test_outage_without_fault_time_is_the_longest_gap() -> None:
    w = fake_writer([ack(1, 1.0), ack(2, 1.1), ack(3, 1.9), ack(4, 2.0)])
    assert w.outage().seconds == pytest.approx(0.8)


def test_outage_with_no_write_after_the_fault_is_open_ended() -> None:
    w = fake_writer([ack(1, 1.0), ack(2, 1.1)], failures=((3, 1.6),))
    outage = w.outage(fault_at=1.5)
    assert outage.seconds is None and outage.as_dict()["recovered"] is False
    assert outage.observed


def test_loss_window_runs_from_last_survivor_to_last_lost() -> None:
    acks = [ack(i, i / 10) for i in range(1, 11)]
    assert loss_window(acks, acks[7:]) == pytest.approx(1.0 - 0.7)
    assert loss_window(acks, []) == 0.0


def test_bad_rate_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="rate"):
        Writer([], rate=0)


def test_measurement_places_outage_on_the_rto_clock() -> None:
    m = Measurement()
    rto = m.declare_disaster()
    w = fake_writer([ack(1, rto.started_at - 0.01), ack(2, rto.started_at + 0.5)])
    m.record_outage(w.outage(fault_at=rto.started_at))
    assert m.outage is not None and m.outage["start_s"] == pytest.approx(0)
    assert m.outage["seconds"] == pytest.approx(0.5)
    assert m.outage["last_before"]["t_s"] == pytest.approx(-0.01)


# against real servers ---------------------------------------------------------------------
@pytest.mark.pgdr
def test_writer_is_bounded_and_keeps_its_rate(pgdr) -> None:
    primary = pgdr.primary(archive=False)
    w = Writer(primary, rate=40, max_duration=0.5).start()
    w.wait_for_acks(5)
    w._thread.join(5)  # stops by itself at max_duration
    assert not w.running
    acks = w.acks
    assert 10 <= len(acks) <= 22, len(acks)
    assert [a.id for a in acks] == list(range(1, len(acks) + 1))
    assert {a.timeline for a in acks} == {1} and all(a.node == "primary" for a in acks)
    assert primary.scalar("SELECT count(*) FROM pgdr_probe") == len(acks)
    assert w.lost_commits(primary) == []


@pytest.mark.pgdr(rto="30s", rpo=0)
def test_sync_failover_writer_follows_and_loses_nothing(pgdr, pgdr_measure) -> None:
    primary = pgdr.primary(archive=False)
    replica = pgdr.replica(primary, sync=True)
    with Writer(lambda: [primary, replica], rate=50, max_duration=60) as w:
        w.wait_for_acks(20)
        rto = pgdr_measure.declare_disaster()
        primary.crash()
        rto.lap("crash primary")
        pgdr.promote(replica)
        rto.lap("promote replica")
        first = w.wait_for_acks(1, after=rto.started_at)  # not the dying primary's in-flight
        rto.stop("first write on new primary")
    assert (first.node, first.timeline) == (replica.name, 2)
    outage = w.outage(fault_at=rto.started_at)
    pgdr_measure.record_outage(outage)
    rpo = w.rpo(replica)
    pgdr_measure.record_rpo(rpo)
    assert rpo.lost_commits == 0 and rpo.window_s == 0
    assert rpo.wal_bytes is not None and rpo.wal_bytes < 16 * 1024
    assert 0 < outage.seconds <= rto.total + 0.1
    assert w.errors, "the crash must have shown up as write errors"


@pytest.mark.pgdr
def test_async_replica_left_behind_loses_acknowledged_commits(pgdr, pgdr_measure) -> None:
    primary = pgdr.primary(archive=False)
    replica = pgdr.replica(primary)
    with Writer(lambda: [primary, replica], rate=100, max_duration=60) as w:
        w.wait_for_acks(10)
        pgdr.wait_caught_up(primary, replica)
        replica.stop()
        behind = w.acks[-1].client_t
        w.wait_for_acks(15, since=behind)
        rto = pgdr_measure.declare_disaster()
        primary.crash()
        replica.start()
        pgdr.promote(replica)
        w.wait_for_acks(1, after=rto.started_at)
        rto.stop("promote stale replica")
    with pytest.raises(RecoveryError, match="still in recovery"):
        Writer(primary).lost_commits(_StandbyStub())
    rpo = w.rpo(replica)
    pgdr_measure.record_rpo(rpo)
    assert rpo.lost_commits >= 15
    assert rpo.window_s > 0 and rpo.wal_bytes and rpo.wal_bytes > 0
    lost_ids = [a.id for a in rpo.lost]
    assert lost_ids == sorted(lost_ids) and all(a.node == "primary" for a in rpo.lost)
    assert pgdr_measure.as_dict()["rpo"]["lost_commits"] == rpo.lost_commits


class _StandbyStub:
    name = "standby"

    def in_recovery(self) -> bool:
        return True


@pytest.mark.pgdr
def test_outage_at_rate_500_runs_until_the_new_primary_answers(pgdr, pgdr_measure) -> None:
    """docker kill takes ~150 ms, during which the old primary still acknowledges commits:
    neither the outage nor ``wait_for_acks(after=)`` may end with one of those."""
    primary = pgdr.primary(archive=False)
    replica = pgdr.replica(primary)
    with Writer(lambda: [primary, replica], rate=500, max_duration=60) as w:
        w.wait_for_acks(100)
        rto = pgdr_measure.declare_disaster()
        fault_at = w.mark_fault(rto.started_at)
        primary.crash()
        rto.lap("crash primary")
        promote_at = w.clock()
        pgdr.promote(replica)
        rto.lap("promote replica")
        first = w.wait_for_acks(1, after=fault_at)
        rto.stop("first write on new primary")
    assert (first.node, first.timeline) == (replica.name, 2), "an ack of the dead primary"
    outage = w.outage()
    pgdr_measure.record_outage(outage)
    pgdr_measure.record("acked after the fault by the old primary", outage.acked_after_fault)
    assert outage.first_after == first and outage.observed
    assert outage.seconds is not None
    assert promote_at - fault_at <= outage.seconds <= rto.total + 0.05
    assert all(a.node == primary.name for a in w.acks if fault_at < a.client_t < first.client_t)
