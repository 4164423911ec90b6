"""Quorum synchronous replication (PostgreSQL src/test/recovery/t/007_sync_rep.pl:
``synchronous_standby_names = 'ANY 1 (a, b)'``).

Two standbys, either of which may confirm a commit. Checked, with the drill's marker rows
(schema ``pgdr_drill``) counted exactly:

* both standbys up: commits are acknowledged (both are ``quorum`` in pg_stat_replication);
* one standby lost: commits are still acknowledged, confirmed by the other alone;
* both lost: a commit does not return; the server shows it waiting (``wait_event = 'SyncRep'``
  in pg_stat_activity) until it is cancelled, when PostgreSQL warns that it committed locally
  but was not replicated: the client was never told it succeeded;
* the primary dies; both standbys come back; the one holding the most WAL is promoted and it
  holds every acknowledged commit, and none of the unacknowledged one; the other one misses
  exactly the commits the first confirmed alone (failing over to it would have lost them).
  The team's database is intact (fingerprint).
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from pytest_pgdr import Lsn, Measurement, Node, Topology, assert_same, fingerprint
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr

QUORUM = "ANY 1 (standby_a, standby_b)"
WRITES = 10  # marker commits per phase
SYNC_CANCELED = "canceling wait for synchronous replication"
NO_UPSTREAM = r"could not connect to the primary server"


class BlockedCommit(threading.Thread):
    """One marker commit on its own connection, in the background: ``returned`` is set when
    the client gets an answer (``row_id``, and the server's warnings in ``notices``)."""

    def __init__(self, node: Node, ledger: str, dbname: str) -> None:
        super().__init__(daemon=True)
        self.conn: psycopg.Connection[Any] = node.connect(dbname)
        self.pid = self.conn.info.backend_pid
        self.ledger = ledger
        self.notices: list[str] = []
        self.conn.add_notice_handler(lambda d: self.notices.append(d.message_primary or ""))
        self.row_id: int | None = None
        self.returned = threading.Event()

    def run(self) -> None:
        with self.conn:
            row = self.conn.execute(
                f"INSERT INTO {self.ledger} DEFAULT VALUES RETURNING id"
            ).fetchone()
            self.row_id = None if row is None else int(row[0])
            self.returned.set()


def ids(node: Node, ledger: str, dbname: str) -> set[int]:
    return {row[0] for row in node.query(f"SELECT id FROM {ledger}", dbname=dbname)}


def wait_quorum_members(primary: Node, count: int) -> None:
    primary.poll_query(
        f"SELECT count(*) = {count} FROM pg_stat_replication WHERE sync_state = 'quorum'",
        f"{count} standby(s) to be quorum members",
    )


def block_and_cancel(primary: Node, ledger: str, dbname: str) -> BlockedCommit:
    """A commit with no standby to confirm it: waits in SyncRep until cancelled."""
    commit = BlockedCommit(primary, ledger, dbname)
    commit.start()
    primary.poll_query(
        f"SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE pid = {commit.pid}",
        "the commit to wait for a synchronous standby",
    )
    assert not commit.returned.is_set(), "a commit returned with no standby to confirm it"
    primary.scalar("SELECT pg_cancel_backend(%s)", [commit.pid])
    commit.join(10)
    assert commit.returned.is_set() and commit.row_id is not None
    assert any(SYNC_CANCELED in n for n in commit.notices), commit.notices
    return commit


def end_of_local_wal(node: Node, offset: int) -> Lsn:
    """What a standby whose upstream is gone replayed, once it ran out of its own WAL (its
    startup process then asks for streaming, which fails)."""
    poll(
        lambda: node.log.grep(NO_UPSTREAM, offset),
        f"{node.name} to replay all its WAL and look for its upstream",
        log_tail=lambda: node.log.tail(15, offset),
    )
    return node.lsn("replay")


def test_quorum_commit_survives_failover(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary(archive=False)  # no archive: each standby has only what it received
    pgdr_data.load(primary)
    ledger = ledger_table(primary, db)
    standbys = [pgdr.replica(primary, name=n) for n in ("standby_a", "standby_b")]
    a, b = standbys
    primary.conf["synchronous_standby_names"] = QUORUM
    primary.reload()
    wait_quorum_members(primary, 2)
    expected = fingerprint(primary, db)
    with_both = app_write(primary, db, WRITES)
    pgdr.wait_caught_up(primary, a)

    a.crash()  # one synchronous standby lost: standby_b confirms alone
    wait_quorum_members(primary, 1)
    with_one = app_write(primary, db, WRITES)
    b.crash()  # both lost
    blocked = block_and_cancel(primary, ledger, db)
    assert blocked.row_id in ids(primary, ledger, db), "committed locally all the same"
    acknowledged = set(with_both) | set(with_one)

    rto = pgdr_measure.declare_disaster()
    primary.crash()
    assert not primary.is_running(), "the old primary is still running"
    rto.lap("fence old primary")
    offsets = {n.name: n.log.offset() for n in standbys}
    for node in standbys:
        node.start()
    held = {n.name: end_of_local_wal(n, offsets[n.name]) for n in standbys}
    new, other = sorted(standbys, key=lambda n: held[n.name].value, reverse=True)
    rto.lap("pick the most advanced standby")
    pgdr.promote(new)
    rto.lap("promote")
    actual = fingerprint(new, db)
    rto.stop("verify")

    assert new is b, f"{new.name} is ahead although only standby_b confirmed the last commits"
    assert ids(new, ledger, db) == acknowledged, "every acknowledged commit, nothing else"
    assert ids(other, ledger, db) == set(with_both), "standby_a missed what b confirmed alone"
    assert_same(expected, actual.merged(expected.only(ledger)), "the promoted standby")
    assert new.timeline() == 2
    pgdr_measure.record("acknowledged with one standby lost", len(with_one))
    pgdr_measure.record("blocked commit", f"cancelled: {blocked.notices[-1]}")
    pgdr_measure.record("lead of the promoted standby (bytes)", held[b.name] - held[a.name])
    pgdr_measure.record_rpo(lost_commits=len(acknowledged - ids(new, ledger, db)))
