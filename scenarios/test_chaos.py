"""Chaos drills: a fault injected under a live client (``Writer``) and its commit ledger.

* partition: a streaming replica is cut off from the network while the primary keeps taking
  writes; its replay stops; once healed it catches up and holds exactly every acknowledged
  row (Docker backend: the local one has no network to cut, so it skips).
* WAL disk full: the primary's pg_wal (a 96 MB tmpfs) fills up under a batch job; the server
  PANICs, its automatic restart (``restart_after_crash``) fails on the still-full disk and the
  postmaster shuts down; once space is freed an explicit restart recovers every acknowledged
  commit and writes resume (Docker backend: the local one skips).
* freeze: every process of the primary is stopped (SIGSTOP / ``docker pause``); writes stall,
  then resume on thaw with nothing refused and nothing lost (both backends).

The archive failing and being repaired is the drill ``test_wal_archive_health.py``.

The primary holds the team's database (``pgdr_data``): after each fault its whole fingerprint
is what it was, on the primary and on the replica that caught up. The Writer's ledger lives in
``postgres``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from pytest_pgdr import (
    Lsn,
    Measurement,
    Node,
    Topology,
    WaitTimeout,
    Writer,
    assert_same,
    faults,
    fingerprint,
)
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.drill.teamdata import TeamData

pytestmark = pytest.mark.pgdr

RATE = 50  # writer commits per second
FREEZE_S = 1.0  # how long the primary stays frozen
WAL_LIMIT = "96m"
WAL_LIMIT_BYTES = 96 << 20
BATCH = (
    "INSERT INTO batch (pad) SELECT repeat(md5(g::text), 28)"
    " FROM generate_series(1, 1000) g"
)  # ~1 MB of WAL
PANIC_FULL = r"PANIC: .*No space left on device"
GAVE_UP = r"(shutting down|aborting startup) due to startup process failure"


def over_socket(node: Node, sql: str, dbname: str = "postgres") -> list[str]:
    """``sql``'s output lines through psql on the node's own socket: no network needed, so
    it reaches a node cut off the network (wherever the socket is: this machine, a volume)."""
    return node.psql(sql, dbname, "-At", socket=True).splitlines()


def replay_lsn(node: Node) -> Lsn:
    return Lsn.parse(over_socket(node, "SELECT pg_last_wal_replay_lsn()")[0])


def probe_ids(node: Node, table: str, socket: bool = False) -> set[int]:
    if socket:
        return {int(line) for line in over_socket(node, f"SELECT id FROM {table}")}
    return {row[0] for row in node.query(f"SELECT id FROM {table}")}


def wait_replay_stalls(conn: Node, writer: Writer, quiet_acks: int) -> Lsn:
    """The replica's replay LSN once it stayed put while the primary acknowledged
    ``quiet_acks`` more commits (WAL already received may still be replayed just after a cut)."""
    seen: dict[str, Any] = {"lsn": None, "acks": 0}

    def stalled() -> Lsn | None:
        lsn, acks = replay_lsn(conn), len(writer.acks)
        if lsn != seen["lsn"]:
            seen.update(lsn=lsn, acks=acks)
            return None
        return lsn if acks - seen["acks"] >= quiet_acks else None

    return poll(stalled, f"replay to stay put over {quiet_acks} commits", 20, interval=0.01)


def test_partitioned_replica_catches_up_with_every_acknowledged_row(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    # no archive: the replica can only get WAL over the network that is about to be cut
    primary = pgdr.primary(archive=False, settings={"wal_sender_timeout": "5s"})
    faults.partition(primary).check()  # the local backend skips here, before building more
    pgdr_data.load(primary)
    team = fingerprint(primary, pgdr_data.dbname)
    replica = pgdr.replica(primary, settings={"wal_receiver_timeout": "5s"})
    standby = replica
    with Writer(primary, rate=RATE) as writer:
        writer.wait_for_acks(20)
        pgdr.wait_caught_up(primary, replica)
        with faults.partition(replica):
            cut_at = writer.mark_fault()
            stalled = wait_replay_stalls(standby, writer, quiet_acks=RATE // 2)
            writer.wait_for_acks(RATE // 2, since=writer.clock())  # the primary writes on
            seen = probe_ids(standby, writer.table, socket=True)
            acked_so_far = [a.id for a in writer.acks]
            lag_bytes = primary.lsn() - stalled
            since = "clock_timestamp() - pg_last_xact_replay_timestamp()"
            lag_s = float(over_socket(standby, f"SELECT extract(epoch FROM {since})")[0])
            assert replay_lsn(standby) == stalled, "replay moved while cut off"
            assert lag_bytes > 0
            assert seen == set(range(1, max(seen) + 1)), "the replica holds a prefix of the rows"
            assert max(seen) + RATE // 2 <= acked_so_far[-1], "rows acked after the cut arrived"
        rto = pgdr_measure.declare_disaster()  # healed: until the replica has caught up
        pgdr.wait_caught_up(primary, replica)
        catch_up_s = rto.stop("catch up")
    pgdr.wait_caught_up(primary, replica)

    acked = {a.id for a in writer.acks}
    assert writer.errors == [], "the primary refused writes during the partition"
    assert probe_ids(replica, writer.table) == acked == probe_ids(primary, writer.table)
    assert writer.lost_commits(replica, allow_standby=True) == []
    assert_same(team, fingerprint(replica, pgdr_data.dbname), "the team's database, caught up")
    pgdr_measure.record_lag(seconds=round(lag_s, 3), nbytes=lag_bytes, name="replica lag at heal")
    pgdr_measure.figure("catch-up time", round(catch_up_s, 4), "s")
    pgdr_measure.record_outage(writer.outage(fault_at=cut_at))
    pgdr_measure.record_rpo(writer.rpo(replica, allow_standby=True))


def run_batches_until_refused(node: Node) -> int:
    """A batch job writing ~1 MB of WAL per statement until the server fails it."""
    done = {"batches": 0}
    with node.connect() as conn:

        def refused() -> bool:
            try:
                conn.execute(BATCH)
            except psycopg.Error:
                return True
            done["batches"] += 1
            return False

        poll(refused, "the batch job to run into the full disk", 60, interval=0)
    return done["batches"]


def test_wal_disk_full_then_relief_loses_no_acknowledged_commit(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    primary = pgdr.primary(wal_limit=WAL_LIMIT)  # the local backend skips here
    pgdr_data.load(primary)
    team = fingerprint(primary, pgdr_data.dbname)
    primary.query("CREATE TABLE batch (id bigserial PRIMARY KEY, pad text NOT NULL)")
    assert primary.host.wal_space(primary.name)[0] == WAL_LIMIT_BYTES  # type: ignore[attr-defined]
    with Writer(primary, rate=RATE) as writer:
        writer.wait_for_acks(20)
        offset = primary.log.offset()
        with faults.disk_full(primary) as full:
            rto = pgdr_measure.declare_disaster()
            fault_at = rto.started_at
            assert fault_at is not None
            assert full.filler_bytes > 0  # type: ignore[attr-defined]
            assert primary.host.wal_space(primary.name)[1] < 64 << 10  # type: ignore[attr-defined]
            batches = run_batches_until_refused(primary)
            # restart_after_crash (on) re-runs crash recovery, which needs a new segment too
            # and fails: the postmaster shuts down by itself while the disk is full
            poll(lambda: not primary.is_running(), f"{primary.name} to give up", 30)
            rto.lap("fill up, PANIC, shut down")
            panics = primary.log.grep(PANIC_FULL, offset)
            assert panics, primary.log.tail(30, offset)
            assert primary.log.grep(GAVE_UP, offset), primary.log.tail(30, offset)
            down_at = writer.clock()
        rto.lap("relief")  # the filler is gone: the WAL tmpfs has room again
        assert primary.host.wal_space(primary.name)[1] >= 32 << 20  # type: ignore[attr-defined]
        primary.start()  # explicit restart: crash recovery from the WAL kept on the tmpfs
        rto.lap("restart and crash recovery")
        writer.wait_for_acks(1, after=down_at)
        rto.stop("first write")
        writer.wait_for_acks(RATE // 5, after=down_at)  # it takes writes again

    acks = writer.acks
    failed_while_full = [e for e in writer.errors if e.client_t > fault_at]
    present = probe_ids(primary, writer.table)
    in_flight = set(writer.ledger.unacknowledged)
    assert failed_while_full and in_flight, "no commit failed while the WAL disk was full"
    assert writer.lost_commits(primary) == [], "acknowledged commits lost"
    assert present - {a.id for a in acks} <= in_flight, "rows nobody wrote"
    # every acknowledged batch survived; the one refused may have committed all the same
    assert primary.scalar("SELECT count(*) FROM batch") in (1000 * batches, 1000 * (batches + 1))
    assert not primary.in_recovery()
    # crash recovery leaves each sequence where its last WAL record put it: ahead, never behind
    recovered = fingerprint(primary, pgdr_data.dbname)
    assert_same(team, recovered, "the team's database, recovered", sequences="at_least")
    pgdr_measure.record("batches before the disk was full", batches)
    pgdr_measure.record("panic", panics[0].split("PANIC:", 1)[1].strip())
    pgdr_measure.attach_log(primary, offset)
    # writes still succeed on a full disk until the WAL segment in use runs out: the outage
    # starts after the last write acknowledged before the server went down
    last_ok = max(a.client_t for a in acks if a.client_t <= down_at)
    outage = writer.outage(fault_at=last_ok)
    assert outage.first_after is not None and outage.first_after.client_t > down_at
    pgdr_measure.record_outage(outage)
    pgdr_measure.record_rpo(writer.rpo(primary))


def test_frozen_primary_stalls_writes_then_loses_nothing(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    primary = pgdr.primary(archive=False)
    pgdr_data.load(primary)
    team = fingerprint(primary, pgdr_data.dbname)
    with Writer(primary, rate=RATE) as writer:
        writer.wait_for_acks(20)
        with faults.freeze(primary) as frozen:  # thawed on the way out, whatever happens
            rto = pgdr_measure.declare_disaster()
            frozen_at, frozen_wall = rto.started_at, datetime.now(UTC)
            assert frozen_at is not None
            with pytest.raises(WaitTimeout):  # a reply already on the wire may still land
                writer.wait_for_acks(2, after=frozen_at, timeout=FREEZE_S)
            thaw_at, thaw_wall = writer.clock(), datetime.now(UTC)
            rto.lap("frozen")
        writer.wait_for_acks(1, after=thaw_at)
        rto.stop("first write")
        writer.wait_for_acks(RATE // 5, after=thaw_at)
    assert not frozen.active and primary.scalar("SELECT 1") == 1

    acks = writer.acks
    executed_before = [a for a in acks if a.server_t < frozen_wall]
    fault_at = max(frozen_at, executed_before[-1].client_t)
    outage = writer.outage(fault_at=fault_at)
    assert not [a for a in acks if frozen_wall <= a.server_t <= thaw_wall], (
        "a frozen server executed a write"
    )
    assert outage.last_before == executed_before[-1] and outage.first_after is not None
    assert outage.first_after.client_t > thaw_at and outage.first_after.server_t > thaw_wall
    assert outage.seconds is not None and outage.seconds > thaw_at - fault_at
    assert thaw_at - frozen_at >= FREEZE_S
    assert writer.errors == [] and outage.attempts_failed == 0, "a write was refused"
    assert [a.id for a in acks] == list(range(1, len(acks) + 1)), "the ledger has a gap"
    assert writer.lost_commits(primary) == []
    assert_same(team, fingerprint(primary, pgdr_data.dbname), "the team's database, thawed")
    pgdr_measure.record_outage(outage)
    pgdr_measure.record_rpo(writer.rpo(primary))
