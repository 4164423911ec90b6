"""The application's client path in front of Patroni (Lab 14 step 8 and practice challenge 4;
CloudNativePG's ``fastfailover_test.go``, which writes through the service in front of the
cluster and measures the gap).

The leader node of a synchronous three-node Patroni cluster is killed (Patroni and
PostgreSQL) while a client writes through libpq multi-host (which finds the new leader by
itself) or through pgbouncer (which the drill repoints to the leader Patroni elected: that step
is inside the measured outage). Measured: the client-seen write outage, failed attempts by
class, acknowledged commits lost (none in synchronous mode); never two writers afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_pgdr import Measurement, Writer
from pytest_pgdr.drill.splitbrain import assert_single_writer
from pytest_pgdr.drill.teamdata import DRILL_SCHEMA, TeamData, ledger_table
from pytest_pgdr.ha import ClusterManager
from pytest_pgdr.ha.pooler import ClientPath

pytestmark = pytest.mark.pgdr

RATE = 50  # client commits a second
PROBE = f"{DRILL_SCHEMA}.client_probe"


@pytest.mark.parametrize("kind", ["multihost", "pgbouncer"])
def test_patroni_leader_killed_seen_through_a_client_path(
    pgdr_ha: Callable[..., ClusterManager],
    pgdr_client_path: Callable[..., ClientPath],
    pgdr_data: TeamData,
    pgdr_measure: Measurement,
    kind: str,
) -> None:
    ha = pgdr_ha("patroni", synchronous_mode=True)
    db = pgdr_data.dbname
    leader = ha.leader()
    pgdr_data.load(leader)
    ledger_table(leader, db)
    others = [n for n in ha.nodes if n is not leader]
    path = pgdr_client_path(kind, [leader, *others], dbnames=(db,))
    with Writer(via=path, rate=RATE, dbname=db, table=PROBE) as writer:
        writer.wait_for_acks(RATE // 5)
        ha.wait_replicas(leader)
        writer.wait_for_acks(RATE // 5, since=writer.clock())
        rto = pgdr_measure.declare_disaster()
        ha.kill(leader)
        new = ha.leader(exclude=leader)
        rto.lap("new leader")
        path.repoint(new)  # pgbouncer: rewrite and RELOAD; multihost: nothing to do
        rto.lap(f"{path.name} on the new leader")
        writer.wait_for_acks(1, after=rto.started_at)
        rto.stop("first write")
        writer.wait_for_acks(RATE // 5, after=rto.started_at)

    outage = writer.outage(fault_at=rto.started_at)
    pgdr_measure.record_outage(outage)
    pgdr_measure.record_rpo(writer.rpo(new))
    pgdr_measure.record("errors_by_class", dict(outage.errors_by_class))
    assert outage.seconds is not None and sum(outage.errors_by_class.values()) >= 1
    assert writer.lost_commits(new) == [], "acknowledged commits lost"
    assert assert_single_writer(ha.nodes) is new, "the new leader is not the one writer"
