"""HA drills on Patroni + etcd, part two: the old leader rejoins with pg_rewind, and etcd loses
its quorum.

- Rejoin follows Patroni's ``features/basic_replication.feature`` (the former leader rejoins
  with pg_rewind, and the table it wrote alone, ``splitbrain``, is gone): Patroni alone dies on
  the leader, so its PostgreSQL stays writable (a split brain, which the check catches) and
  takes writes nobody else sees; it is then fenced (killed whole), a new leader is elected,
  and the node comes back as a replica of it, rewound, without those writes.
- Quorum loss follows Patroni's ``features/dcs_failsafe_mode.feature``: without failsafe mode
  a leader that cannot renew its lock demotes itself (no node accepts writes until etcd is
  back); with ``failsafe_mode`` it stays the leader while every member answers its REST API.
  Both run in synchronous mode: no acknowledged commit may be lost either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest

from pytest_pgdr import Measurement, Writer, fingerprint
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.drill.splitbrain import SplitBrain, assert_single_writer, writers
from pytest_pgdr.drill.teamdata import TeamData
from pytest_pgdr.ha import DCS, REJOIN, ClusterManager, DcsControl
from pytest_pgdr.ha.patroni_config import PatroniOptions

from .test_ha_patroni import RATE, converged, loaded_cluster

pytestmark = pytest.mark.pgdr

DIVERGENT = "pgdr_drill.splitbrain"


def test_old_leader_rejoins_with_pg_rewind_without_its_divergent_writes(
    pgdr_ha: Callable[..., ClusterManager], pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    ha = pgdr_ha("patroni")
    if REJOIN not in ha.capabilities:
        pytest.skip(f"{ha.describe()} does not rejoin an old leader by itself here")
    old, writer = loaded_cluster(ha, pgdr_data)
    writer.stop()
    team_before = fingerprint(old, pgdr_data.dbname)
    db = pgdr_data.dbname

    ha.kill_manager(old)  # Patroni only: its PostgreSQL keeps running
    rto = pgdr_measure.declare_disaster()
    new = ha.leader(exclude=old)
    rto.lap("new leader")
    old.query(f"CREATE TABLE {DIVERGENT} AS SELECT generate_series(1, 100) AS id", dbname=db)
    with pytest.raises(SplitBrain, match="2 nodes accepted writes"):
        assert_single_writer(ha.nodes)
    new.query(f"CREATE TABLE {DIVERGENT} (id int)", dbname=db)  # the survivor's own table
    new.query(f"INSERT INTO {DIVERGENT} VALUES (-1)", dbname=db)
    ha.kill(old)  # fenced at last
    rto.lap("fence the old leader")
    offset = old.log.offset()
    ha.restart(old)
    ha.wait_replicas(new)
    rto.stop("old leader rewound and streaming")

    assert old.in_recovery() and assert_single_writer(ha.nodes) is new
    assert old.log.grep("pg_rewind", offset), "Patroni did not rewind the old leader"
    replayed = new.lsn("write")
    old.poll_query(f"SELECT pg_last_wal_replay_lsn() >= '{replayed}'", "replay", dbname=db)
    assert old.query(f"SELECT id FROM {DIVERGENT}", dbname=db) == [(-1,)], "divergent rows"
    pgdr_measure.attach_log(old, offset, pattern="rewind|diverged|timeline")
    new.query(f"DROP TABLE {DIVERGENT}", dbname=db)
    converged(ha, pgdr_data, team_before)


@pytest.mark.parametrize("failsafe", [False, True], ids=["demotes", "failsafe"])
def test_etcd_quorum_loss(
    pgdr_ha: Callable[..., ClusterManager],
    pgdr_data: TeamData,
    pgdr_measure: Measurement,
    failsafe: bool,
) -> None:
    ha = pgdr_ha("patroni", synchronous_mode=True, failsafe_mode=failsafe)
    if DCS not in ha.capabilities:
        pytest.skip(f"{ha.describe()}: its consensus store is out of this harness's reach")
    dcs = cast(DcsControl, ha)
    leader, writer = loaded_cluster(ha, pgdr_data)
    team_before = fingerprint(leader, pgdr_data.dbname)
    ttl = float(PatroniOptions().ttl)
    with writer:
        writer.wait_for_acks(RATE // 5, since=writer.clock())
        lost_at = writer.mark_fault()
        rto = pgdr_measure.declare_disaster()
        dcs.lose_quorum()
        rto.lap("etcd without quorum")
        if failsafe:
            keeps_leading(ha, writer, leader, lost_at, ttl)
            rto.lap("leader kept past the lock's ttl")
        else:
            demoted_at = demotes(ha, writer)
            pgdr_measure.figure("demoted after", round(demoted_at - lost_at, 3), "s")
            rto.lap("leader demoted itself")
        back_at = writer.clock()
        dcs.restore_quorum()
        new = ha.leader()
        writer.wait_for_acks(1, since=back_at)
        rto.stop("etcd back, first write")
        ha.wait_replicas(new)
    pgdr_measure.record_outage(writer.outage(lost_at))
    pgdr_measure.record_rpo(writer.rpo(new))
    assert writer.lost_commits(new) == [], "acknowledged commits lost"
    assert assert_single_writer(ha.nodes) is new
    converged(ha, pgdr_data, team_before)


def demotes(ha: ClusterManager, writer: Writer) -> float:
    """Without failsafe mode: soon no node accepts writes (and none ever two at once)."""

    def nobody_writes() -> bool:
        return assert_single_writer(ha.nodes, allow_none=True) is None

    poll(nobody_writes, "the leader to demote itself without etcd", 30, interval=0.2)
    return writer.clock()


def keeps_leading(
    ha: ClusterManager, writer: Writer, leader: object, lost_at: float, ttl: float
) -> None:
    """With failsafe mode: the leader keeps acknowledging writes well past its lock's ttl."""
    past_ttl = lost_at + ttl * 1.5
    assert writer.wait_for_acks(RATE, since=past_ttl).client_t > past_ttl
    assert writers(ha.nodes) == [leader], "the failsafe leader stopped accepting writes"
