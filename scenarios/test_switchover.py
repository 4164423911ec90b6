"""Planned switchover (guide "Zero-Downtime Migration to New Server", scenario 2).

A standby is built on the new server and its lag measured while the application writes; then
writes stop, the standby catches up (including the old primary's shutdown checkpoint), is
promoted, clients move to it, and nothing is lost: the data fingerprints are equal. The old
primary then follows the new one without pg_rewind, since nothing diverged.

The primary holds the team's database (``pgdr_data``); both nodes end with its whole
fingerprint. The application's events go to ``postgres``.
"""

from __future__ import annotations

import re
import time

import psycopg
import pytest

from pytest_pgdr import Lsn, Measurement, Node, Topology, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import TeamData

pytestmark = pytest.mark.pgdr


def write_burst(node: Node, first: int, count: int) -> None:
    node.query(
        "INSERT INTO app_events SELECT g, clock_timestamp(), md5(g::text)"
        " FROM generate_series(%s::int, %s::int) g",
        [first, first + count - 1],
    )


def measure_lag(pgdr: Topology, primary: Node, standby: Node, pgdr_measure: Measurement) -> None:
    """Bytes the standby is behind right after a burst, and how long it takes to catch up."""
    pgdr.wait_caught_up(primary, standby)  # streaming, with feedback in pg_stat_replication
    write_burst(primary, 1001, 20_000)
    started = time.perf_counter()
    lag = primary.scalar(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)"
        " FROM pg_stat_replication WHERE application_name = %s",
        [standby.name],
    )
    pgdr.wait_caught_up(primary, standby)
    catch_up = time.perf_counter() - started
    replay_age = standby.scalar(
        "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
    )
    pgdr_measure.record("lag_bytes_after_burst", int(lag))
    pgdr_measure.record("catch_up_s", round(catch_up, 4))
    pgdr_measure.record("replay_age_s", round(float(replay_age), 4))
    assert lag >= 0 and catch_up > 0


def shutdown_checkpoint(node: Node) -> Lsn:
    """The old primary's last record (read from its stopped data directory)."""
    text = node.run_tool("pg_controldata", node.datadir).stdout
    assert re.search(r"Database cluster state:\s+shut down$", text, re.M), text
    found = re.search(r"Latest checkpoint location:\s+(\S+)", text)
    assert found, text
    return Lsn.parse(found.group(1))


def stop_writes(node: Node) -> None:
    node.configure(default_transaction_read_only=True)
    node.reload()
    with node.connect() as client, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        client.execute("INSERT INTO app_events VALUES (-1, now(), 'refused')")


def test_planned_switchover_loses_nothing(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    old = pgdr.primary()
    pgdr_data.load(old)
    old.query("CREATE TABLE app_events (id int PRIMARY KEY, at timestamptz, body text)")
    write_burst(old, 1, 1000)
    new = pgdr.replica(old, name="new_server")
    measure_lag(pgdr, old, new, pgdr_measure)

    rto = pgdr_measure.declare_disaster()
    stop_writes(old)
    rto.lap("stop writes")
    pgdr.wait_caught_up(old, new)
    expected, team = fingerprint(old), fingerprint(old, db)
    old.stop()
    pgdr.wait_replayed(new, shutdown_checkpoint(old))
    rto.lap("catch up")
    pgdr.promote(new)
    rto.lap("promote")
    with new.connect() as client:  # the application's connection string now names new
        client.execute("INSERT INTO app_events VALUES (0, now(), 'first write on new')")
    rto.stop("move clients")

    assert new.timeline() == 2
    new.query("DELETE FROM app_events WHERE id = 0")
    assert_same(expected, fingerprint(new), "the new primary after switchover")
    assert_same(team, fingerprint(new, db), f"{db} on the new primary")
    pgdr.follow(old, new)
    pgdr.wait_caught_up(new, old)
    assert old.in_recovery() and old.timeline() == 2, "the old primary follows, no rewind"
    old.configure(default_transaction_read_only=None)
    assert_same(expected, fingerprint(old), "the old primary as a standby")
    assert_same(team, fingerprint(old, db), f"{db} on the old primary as a standby")
