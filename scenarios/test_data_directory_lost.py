"""A replica's data directory is lost (CloudNativePG's E2E ``pg_data_corruption``).

The replica's server is killed (SIGKILL, no shutdown) and its whole ``PGDATA`` removed, as when
a volume is wiped or replaced. While an application keeps writing to the primary (``Writer``),
the replica is rebuilt in place from the primary (``pg_basebackup`` and a new slot) and catches
up. Checked: the primary never refused a write, the rebuilt replica holds exactly the
primary's database (fingerprint) and every acknowledged commit, the ones made during the
rebuild included.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, Node, Topology, Writer, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import DRILL_SCHEMA, TeamData, ledger_table

pytestmark = pytest.mark.pgdr

RATE = 50  # writer commits per second
PROBE = f"{DRILL_SCHEMA}.probe"


def probe_ids(node: Node, dbname: str) -> set[int]:
    return {row[0] for row in node.query(f"SELECT id FROM {PROBE}", dbname=dbname)}


def test_lost_data_directory_is_rebuilt_under_writes(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary(archive=False)
    pgdr_data.load(primary)
    ledger_table(primary, db)  # the drills' schema, for the writer's probe table
    replica = pgdr.replica(primary, name="replica")
    pgdr.wait_caught_up(primary, replica)
    with Writer(primary, rate=RATE, table=PROBE, dbname=db) as writer:
        writer.wait_for_acks(20)
        pgdr.wait_caught_up(primary, replica)
        replica.crash()  # stopped hard: no shutdown checkpoint
        pgdr.host.remove_tree(replica.datadir)
        assert not pgdr.host.exists(replica.datadir) and not replica.is_running()

        rto = pgdr_measure.declare_disaster()
        lost_at = writer.mark_fault(writer.clock())
        pgdr.rebuild(replica, primary)
        rto.lap("rebuild from the primary")
        rebuilt_at = writer.clock()
        writer.wait_for_acks(RATE // 5, since=rebuilt_at)  # the application writes on
        pgdr.wait_caught_up(primary, replica)
        rto.stop("catch up")
    pgdr.wait_caught_up(primary, replica)

    acks = writer.acks
    acked = {a.id for a in acks}
    during = [a for a in acks if lost_at < a.client_t <= rebuilt_at]
    assert writer.errors == [], "the primary refused writes while the replica was rebuilt"
    assert during, "no commit was acknowledged during the rebuild"
    assert probe_ids(replica, db) == acked == probe_ids(primary, db)
    assert writer.lost_commits(replica, allow_standby=True) == []
    assert_same(fingerprint(primary, db), fingerprint(replica, db), "the rebuilt replica")
    assert replica.in_recovery() and replica.timeline() == 1
    pgdr_measure.record("commits acknowledged during the rebuild", len(during))
    pgdr_measure.record_rpo(writer.rpo(replica, allow_standby=True))
