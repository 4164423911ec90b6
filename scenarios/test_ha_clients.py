"""Failover as the application sees it, through the way it connects (Lab 14 practice
challenges 4-5; CloudNativePG's failover e2e test, which writes through a client at a fixed
rate and measures the gap; pgpool-II's regression tests 018 (load balancing) and 003
(failover) in spirit).

* every client path (``direct``, libpq ``multihost`` with ``target_session_attrs=read-write``,
  ``pgbouncer``, ``pgpool``): a writer commits through it while the primary is killed and
  its synchronous standby takes over (promoted by the drill, or by pgpool's own
  failover_command; pgbouncer repointed and reloaded, inside the measured outage). Measured:
  the client-seen write outage, the failed attempts by class, the acknowledged commits lost
  (none: the standby is synchronous); the team database's fingerprint is unchanged;
* pgpool-II sends read-only queries to the standby (``SHOW pool_nodes`` select_cnt, and the
  standby's own ``pg_stat_activity``) and, after its own failover, writes to the new primary;
* a libpq multi-host string refuses the standby as long as it is read-only and lands on it
  once promoted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from pytest_pgdr import Measurement, Node, Topology, Writer, assert_same, fingerprint
from pytest_pgdr.drill.clienterrors import NOT_PRIMARY, classify_exception
from pytest_pgdr.drill.teamdata import DRILL_SCHEMA, TeamData, ledger_table
from pytest_pgdr.drill.writer import PROBE_DDL
from pytest_pgdr.ha.pgpool import PgPool
from pytest_pgdr.ha.pooler import KINDS, ClientPath

pytestmark = pytest.mark.pgdr

RATE = 100  # writer commits per second
PROBE = f"{DRILL_SCHEMA}.probe"
MARKERS = 20  # marker rows written through pgpool before and after its failover
MakePath = Callable[..., ClientPath]


def team_primary_and_sync_standby(pgdr: Topology, data: TeamData) -> tuple[Node, Node]:
    """The team's database on a primary, with the drills' schema and a synchronous standby."""
    primary = pgdr.primary(archive=False)
    data.load(primary)
    ledger_table(primary, data.dbname)
    primary.query(PROBE_DDL.format(table=PROBE), dbname=data.dbname)
    standby = pgdr.replica(primary, name="sync_standby", sync=True)
    primary.poll_query(
        "SELECT sync_state = 'sync' FROM pg_stat_replication"
        " WHERE application_name = 'sync_standby'",
        "sync_standby to be synchronous",
    )
    return primary, standby


@pytest.mark.parametrize("kind", KINDS)
def test_failover_seen_through_each_client_path(
    pgdr: Topology,
    pgdr_data: TeamData,
    pgdr_measure: Measurement,
    pgdr_client_path: MakePath,
    kind: str,
) -> None:
    db = pgdr_data.dbname
    primary, standby = team_primary_and_sync_standby(pgdr, pgdr_data)
    path = pgdr_client_path(kind, [primary, standby], dbnames=(db,))
    expected = fingerprint(primary, db)
    with Writer(via=path, rate=RATE, dbname=db, table=PROBE) as writer:
        writer.wait_for_acks(RATE // 5)
        rto = pgdr_measure.declare_disaster()
        primary.crash()
        if not path.promotes:
            pgdr.promote(standby)
            rto.lap("promote")
        path.repoint(standby)  # pgbouncer: rewrite and RELOAD; pgpool: its own failover
        rto.lap(f"{path.name} on the new primary")
        writer.wait_for_acks(1, after=rto.started_at)
        rto.stop("first write")
        writer.wait_for_acks(RATE // 5, after=rto.started_at)

    outage = writer.outage(fault_at=rto.started_at)
    pgdr_measure.record_outage(outage)
    pgdr_measure.record_rpo(writer.rpo(standby))
    pgdr_measure.record("errors_by_class", dict(outage.errors_by_class))
    assert not primary.is_running(), "the old primary must stay down"
    assert outage.first_after is not None and outage.first_after.node == standby.name
    assert outage.seconds is not None and sum(outage.errors_by_class.values()) >= 1
    assert writer.lost_commits(standby) == [], "acknowledged commits lost"
    actual = fingerprint(standby, db)
    assert_same(expected.merged(actual.only(PROBE)), actual, f"{db} after failover ({kind})")
    assert standby.timeline() == 2


def through(path: ClientPath, dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(path.conninfo(dbname), autocommit=True, connect_timeout=5)


def write_markers(conn: psycopg.Connection[Any], count: int) -> list[tuple[int, str]]:
    """``count`` marker commits; (id, the server that took it) for each."""
    sql = f"INSERT INTO {DRILL_SCHEMA}.writes DEFAULT VALUES RETURNING id,"
    sql += " current_setting('cluster_name')"
    out = []
    for _ in range(count):
        row = conn.execute(sql).fetchone()
        assert row is not None
        out.append((int(row[0]), str(row[1])))
    return out


def test_pgpool_balances_reads_then_moves_writes_after_its_failover(
    pgdr: Topology,
    pgdr_data: TeamData,
    pgdr_measure: Measurement,
    pgdr_client_path: MakePath,
) -> None:
    db = pgdr_data.dbname
    primary, standby = team_primary_and_sync_standby(pgdr, pgdr_data)
    pool = pgdr_client_path("pgpool", [primary, standby], dbnames=(db,))
    assert isinstance(pool, PgPool)
    victim = pgdr_data.victim(primary)
    rows = primary.scalar(f"SELECT count(*) FROM {victim}", dbname=db)
    expected = fingerprint(primary, db)
    before = int(pool.pool_nodes()[standby.name]["select_cnt"])
    with through(pool, db) as conn:
        counted = [conn.execute(f"SELECT count(*) FROM {victim}").fetchone() for _ in range(10)]
        seen_on_standby = standby.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type ="
            " 'client backend' AND pid <> pg_backend_pid()",
            [db],
        )
        written = write_markers(conn, MARKERS)
    nodes = pool.pool_nodes()
    select_cnt = int(nodes[standby.name]["select_cnt"]) - before
    assert counted == [(rows,)] * 10
    assert select_cnt >= 10, f"reads did not reach the standby: {nodes}"
    assert seen_on_standby >= 1, "no pgpool session on the standby"
    assert {server for _, server in written} == {primary.name}, "writes went to a standby"

    rto = pgdr_measure.declare_disaster()
    primary.crash()
    pool.repoint(standby)  # waits for pgpool's own failover (failover_command promotes)
    rto.lap("pgpool failover")
    with through(pool, db) as conn:
        after = write_markers(conn, MARKERS)
    rto.stop("first writes")

    assert {server for _, server in after} == {standby.name}, "writes did not move"
    assert not standby.in_recovery() and standby.timeline() == 2
    ids = [i for i, _ in written + after]
    present = standby.scalar(
        f"SELECT count(*) FROM {DRILL_SCHEMA}.writes WHERE id = ANY(%s)", [ids], dbname=db
    )
    assert present == 2 * MARKERS, "marker commits missing on the new primary"
    actual = fingerprint(standby, db)
    assert_same(expected.merged(actual.only(f"{DRILL_SCHEMA}.writes")), actual, db)
    pgdr_measure.record("pgpool select_cnt on the standby", select_cnt)
    pgdr_measure.record_rpo(lost_commits=0)


def test_multihost_conninfo_finds_the_promoted_standby(
    pgdr: Topology, pgdr_measure: Measurement, pgdr_client_path: MakePath
) -> None:
    primary = pgdr.primary(archive=False)
    standby = pgdr.replica(primary)
    pgdr.wait_caught_up(primary, standby)
    path = pgdr_client_path("multihost", [primary, standby])
    with through(path, "postgres") as conn:
        assert conn.execute("SELECT current_setting('cluster_name')").fetchone() == (primary.name,)

    rto = pgdr_measure.declare_disaster()
    primary.crash()
    with pytest.raises(psycopg.OperationalError) as refused:
        through(path, "postgres").close()
    rto.lap("refused while only a standby is left")
    assert classify_exception(refused.value) == NOT_PRIMARY, str(refused.value)
    pgdr.promote(standby)
    rto.lap("promote")
    with through(path, "postgres") as conn:
        row = conn.execute("SELECT current_setting('cluster_name'), pg_is_in_recovery()")
        assert row.fetchone() == (standby.name, False)
    rto.stop("connected to the new primary")
