"""The Patroni member against real Patroni, etcd and PostgreSQL: bootstrap, roles, the Node
interface on its members, and a teardown that leaves no process behind."""

from __future__ import annotations

import pytest

from pytest_pgdr.ha import AUTO_FAILOVER, ClusterManager, cluster_manager
from pytest_pgdr.ha.patroni_procs import postmaster_pid

pytestmark = pytest.mark.pgdr


def test_patroni_bootstraps_a_leader_and_two_streaming_replicas(pgdr_patroni, pgdr_measure):
    ha: ClusterManager = pgdr_patroni
    assert AUTO_FAILOVER in ha.capabilities and ha.describe().startswith("Patroni ")
    leader = ha.leader()
    replicas = ha.wait_replicas(leader)
    assert len(replicas) == 2 and leader not in replicas
    assert not leader.in_recovery() and all(r.in_recovery() for r in replicas)
    leader.query("CREATE TABLE t AS SELECT generate_series(1, 100) AS i")
    lsn = leader.lsn("write")
    for replica in replicas:
        replica.poll_query(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'", "replay")
        assert replica.scalar("SELECT count(*) FROM t") == 100
    pgdr_measure.figure("bootstrap", ha.bootstrap_seconds, "s")  # type: ignore[attr-defined]


def test_close_leaves_no_process(pgdr):
    ha = cluster_manager("patroni", pgdr)
    try:
        ha.start()
        datadirs = [n.datadir for n in ha.nodes]
        procs = [n.proc for n in ha.nodes] + [m.proc for m in ha.etcd.members]  # type: ignore[attr-defined]
    finally:
        ha.close()
    assert all(p is not None and p.poll() is not None for p in procs)
    assert [postmaster_pid(d) for d in datadirs] == [None] * len(datadirs)


@pytest.mark.parametrize("pgdr", [None])
def test_unknown_manager_is_a_usage_error(pgdr):
    from pytest_pgdr.basics.errors import ConfigError

    with pytest.raises(ConfigError, match="Valid managers: plain, patroni"):
        cluster_manager("stolon", pgdr)


def test_plain_member_same_interface(pgdr_ha):
    """The plain member (today's topology) answers the same verbs; it elects nobody by itself."""
    ha: ClusterManager = pgdr_ha("plain", synchronous_mode=True)
    assert AUTO_FAILOVER not in ha.capabilities and ha.synchronous
    old = ha.leader()
    assert len(ha.wait_replicas(old)) == 2
    old.query("CREATE TABLE t AS SELECT generate_series(1, 10) AS i")
    new = ha.switchover()
    assert new is not old and old.in_recovery() and not new.in_recovery()
    new.query("INSERT INTO t VALUES (11)")
    assert len(ha.wait_replicas(new)) == 2
    assert old.scalar("SELECT count(*) FROM t") == 11
