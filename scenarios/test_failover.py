"""Failover: the primary dies (SIGKILL of its process group), a standby is promoted.

Checked: the old primary is really down before anyone promotes (never two writable
primaries); the new primary is on a new timeline whose history file reached the archive, holds
every row committed before the kill (with a synchronous standby: every acknowledged commit,
from a client-side ledger) and accepts writes; a second standby follows it; the old primary
rejoins as a standby with pg_rewind and keeps none of the writes it took after the split.

The primary holds the team's database (``pgdr_data``); every node that ends up serving must
hold its whole fingerprint. The drill's own rows (ledger, ``t``) live in ``postgres``.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from pytest_pgdr import Lsn, Measurement, Node, Topology, assert_same, fingerprint
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.drill.teamdata import TeamData

pytestmark = pytest.mark.pgdr


def insert_rows(node: Node, first: int, last: int) -> None:
    node.query(
        "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(%s::int, %s::int) g",
        [first, last],
    )


def assert_down(node: Node) -> None:
    """The server has exited (its host saw it go) and nobody can connect."""
    assert not node.is_running(), f"{node.name} is still running"
    with pytest.raises(psycopg.OperationalError):
        node.connect().close()


class LedgerWriter(threading.Thread):
    """A client inserting one row per transaction; ``acked`` holds every id whose COMMIT
    returned. ``attempted`` is the id in flight when the connection broke."""

    def __init__(self, node: Node) -> None:
        super().__init__(daemon=True)
        self.conn = node.connect()
        self.acked: list[int] = []
        self.attempted = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        with self.conn:
            while not self.stopping.is_set():
                self.attempted += 1
                try:
                    self.conn.execute("INSERT INTO ledger VALUES (%s)", [self.attempted])
                except psycopg.Error:
                    return
                self.acked.append(self.attempted)


def test_sync_standby_keeps_every_acknowledged_commit(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    primary = pgdr.primary()
    pgdr_data.load(primary)
    team = fingerprint(primary, pgdr_data.dbname)
    primary.query("CREATE TABLE ledger (id int PRIMARY KEY)")
    standby = pgdr.replica(primary, name="sync_standby", sync=True)
    primary.poll_query(
        "SELECT sync_state = 'sync' FROM pg_stat_replication"
        " WHERE application_name = 'sync_standby'",
        "sync_standby to be sync",
    )
    writer = LedgerWriter(primary)
    writer.start()
    try:
        poll(lambda: len(writer.acked) >= 300, "300 acknowledged commits", 30)
        primary.crash()
    finally:
        writer.stopping.set()
        writer.join(10)

    rto = pgdr_measure.declare_disaster()
    assert_down(primary)
    rto.lap("fence old primary")
    pgdr.promote(standby)
    rto.lap("promote")
    present = {row[0] for row in standby.query("SELECT id FROM ledger")}
    assert_same(team, fingerprint(standby, pgdr_data.dbname), "the team's database, promoted")
    rto.stop("verify")

    acked = set(writer.acked)
    lost = sorted(acked - present)
    pgdr_measure.record("acknowledged_commits", len(acked))
    pgdr_measure.record("acknowledged_commits_lost", len(lost))
    assert not lost, f"{len(lost)} acknowledged commits lost, first ids {lost[:10]}"
    assert present - acked <= {writer.attempted}, "only the commit in flight may be unacked"
    assert standby.timeline() == 2
    pgdr.wait_history_archived(2)
    standby.query("INSERT INTO ledger VALUES (-1)")


def received_all(node: Node) -> Lsn | None:
    """The WAL ``node`` received and flushed, once its WAL receiver gave up on the dead
    upstream (until then bytes already on the wire may still arrive)."""
    if node.scalar("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"):
        return None
    return Lsn.parse(str(node.scalar("SELECT pg_last_wal_receive_lsn()")))


def most_advanced_first(standbys: list[Node]) -> tuple[list[Node], int]:
    """The standbys ordered by the WAL they hold, most first (the one to promote), and by
    how many bytes the first leads the last.

    With asynchronous streaming the standbys may hold different amounts of the dead primary's
    last WAL (a hint-bit full-page image, a running-xacts record). Promoting one that holds
    less than another leaves that other ahead of the new timeline's start, and it refuses to
    follow ("requested timeline 2 does not contain minimum recovery point")."""
    held = {
        n.name: poll(lambda n=n: received_all(n), f"{n.name}'s WAL receiver to stop")
        for n in standbys
    }
    ordered = sorted(standbys, key=lambda n: held[n.name].value, reverse=True)
    return ordered, held[ordered[0].name] - held[ordered[-1].name]


def test_failover_follow_and_rewind(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    old = pgdr.primary(name="old_primary")
    pgdr_data.load(old)
    old.query("CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL)")
    insert_rows(old, 1, 1000)
    standbys = [pgdr.replica(old, name="standby_a"), pgdr.replica(old, name="standby_b")]
    lsn = pgdr.wait_caught_up(old, standbys[0])
    pgdr.wait_caught_up(old, standbys[1], lsn)
    committed = fingerprint(old)
    team = fingerprint(old, db)

    old.crash()
    rto = pgdr_measure.declare_disaster()
    assert_down(old)
    (new, follower), lead = most_advanced_first(standbys)
    rto.lap("pick the most advanced standby")
    pgdr_measure.record("promoted", new.name)
    pgdr_measure.record("lead over the other standby (bytes)", lead)
    pgdr.promote(new)
    rto.lap("promote")
    assert_same(committed, fingerprint(new), "the promoted standby")
    assert_same(team, fingerprint(new, db), f"{db} on the promoted standby")
    insert_rows(new, 1001, 1100)
    rto.stop("first write")
    assert new.timeline() == 2
    pgdr.wait_history_archived(2)

    pgdr.follow(follower, new)
    pgdr.wait_caught_up(new, follower)
    assert_same(fingerprint(new), fingerprint(follower), "the standby that follows")
    assert_same(team, fingerprint(follower, db), f"{db} on the standby that follows")
    assert follower.timeline() == 2

    rejoin_with_rewind(pgdr, old, new, db, pgdr_data.victim(new))


def rejoin_with_rewind(pgdr: Topology, old: Node, new: Node, db: str, victim: str) -> None:
    """The old primary comes back by mistake (split brain) and takes writes only it sees;
    pg_rewind then makes it a standby of the new primary, without them."""
    old.configure(archive_mode="off")  # keep the zombie's WAL out of the shared archive
    old.start()
    assert not old.in_recovery(), "the zombie comes back as a writable primary"
    insert_rows(old, 5001, 5100)
    old.query(f"DELETE FROM {victim}", dbname=db)  # diverges in the team's data too
    old.stop()

    output = pgdr.rewind(old, new)
    assert "servers diverged at WAL location" in output, output
    pgdr.wait_caught_up(new, old)
    assert old.in_recovery() and old.timeline() == 2
    assert old.scalar("SELECT count(*) FROM t WHERE id > 5000") == 0, "divergent rows survived"
    assert_same(fingerprint(new), fingerprint(old), "the rewound old primary")
    assert_same(fingerprint(new, db), fingerprint(old, db), f"{db} on the rewound old primary")
    insert_rows(new, 1101, 1200)
    pgdr.wait_caught_up(new, old)
    assert old.scalar("SELECT count(*) FROM t") == 1200, "it keeps following"
