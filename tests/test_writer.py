"""The background writer: rate, bounds, failover following, write outage and RPO.

The ledger arithmetic is tested on fabricated acknowledgements; the rest against real servers
(run with ``--pgdr``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pytest_pgdr import RecoveryError
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.drill.writer import Ack, Writer, loss_window

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ack(i: int, t: float, timeline: int = 1, node: str = "primary") -> Ack:
    return Ack(i, t, T0 + timedelta(seconds=t), timeline, node, f"0/{i:X}000")


def fake_writer(acks: list[Ack], unacknowledged: tuple[int, ...] = ()) -> Writer:
    w = Writer([], rate=10)
    w.ledger.acks.extend(acks)
    w.ledger.unacknowledged.extend(unacknowledged)
    w._next_id = max(a.id for a in acks) + 1
    w.stopped_at = acks[-1].client_t
    return w


# the ledger, without servers --------------------------------------------------------------
def test_outage_is_the_gap_around_the_fault() -> None:
    w = fake_writer(
        [ack(1, 1.0), ack(2, 1.1), ack(5, 3.6, 2, "replica"), ack(6, 3.7, 2)], unacknowledged=(3, 4)
    )
    outage = w.outage(fault_at=1.15)
    assert outage.seconds == pytest.approx(2.5)
    assert outage.server_gap_s == pytest.approx(2.5)
    assert (outage.last_before.id, outage.first_after.id) == (2, 5)
    data = outage.as_dict(origin=1.15)
    assert data["start_s"] == pytest.approx(-0.05) and data["end_s"] == pytest.approx(2.45)
    assert data["failed_attempts"] == 2 and data["first_after"]["timeline"] == 2


def test_outage_without_fault_time_is_the_longest_gap() -> None:
    w = fake_writer([ack(1, 1.0), ack(2, 1.1), ack(3, 1.9), ack(4, 2.0)])
    assert w.outage().seconds == pytest.approx(0.8)


def test_outage_with_no_write_after_the_fault_is_open_ended() -> None:
    w = fake_writer([ack(1, 1.0), ack(2, 1.1)])
    outage = w.outage(fault_at=1.5)
    assert outage.seconds is None and outage.as_dict()["recovered"] is False


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
    assert m.outage is not None and m.outage["start_s"] == pytest.approx(-0.01)
    assert m.outage["seconds"] == pytest.approx(0.51)


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
        # docker kill takes a moment: commits may still be acknowledged until it returns
        crashed_at = rto.started_at + rto.lap("crash primary")
        pgdr.promote(replica)
        rto.lap("promote replica")
        first = w.wait_for_acks(1, after=crashed_at)
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
        w.wait_for_acks(15, after=behind)
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
