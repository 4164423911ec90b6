"""The split-brain check can fail: it catches the Patroni-only kill (Patroni's process group
SIGKILLed, its PostgreSQL, in a session of its own, still writable while a new leader is
elected), and passes when the whole old leader is killed instead."""

from __future__ import annotations

import pytest

from pytest_pgdr.drill.splitbrain import SplitBrain, assert_single_writer, probes

pytestmark = pytest.mark.pgdr


def test_patroni_only_kill_leaves_two_writable_primaries(pgdr_patroni, pgdr_measure):
    ha = pgdr_patroni
    old = ha.leader()
    assert assert_single_writer(ha.nodes) is old
    ha.kill_manager(old)  # Patroni's process group only
    rto = pgdr_measure.declare_disaster()
    new = ha.leader(exclude=old)
    rto.stop("new leader")
    assert old.is_running(), "the old leader's postgres should outlive its Patroni"
    with pytest.raises(SplitBrain) as caught:
        assert_single_writer(ha.nodes)
    message = str(caught.value)
    assert f"{old.name}: not in recovery" in message and f"{new.name}: not in recovery" in message
    assert "2 nodes accepted writes" in message
    pgdr_measure.record("split brain", [p.line() for p in probes(ha.nodes)])
    old.crash()  # fence it, as the drills do
    assert assert_single_writer(ha.nodes) is new


def test_whole_node_kill_leaves_one_writer(pgdr_patroni):
    ha = pgdr_patroni
    old = ha.leader()
    ha.kill(old)
    assert not old.is_running() and not old.manager_running()
    new = ha.leader(exclude=old)
    assert assert_single_writer(ha.nodes) is new


@pytest.mark.parametrize("pgdr", [None])
def test_no_writer_fails_unless_allowed(pgdr):
    class Unreachable:
        name = "gone"

        def connect(self, *args, **kwargs):
            import psycopg

            raise psycopg.OperationalError("connection refused")

    with pytest.raises(SplitBrain, match="No node accepted a write"):
        assert_single_writer([Unreachable()])
    assert assert_single_writer([Unreachable()], allow_none=True) is None
