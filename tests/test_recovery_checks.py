"""Recoveries that used to go wrong without a word, or with the wrong words.

* a PITR target time before the base backup promoted with the backup's data: it is refused;
* ``RecoveryTarget.xid("abc")`` was accepted: every target kind checks its value's form;
* a hole in the archive under a named target was reported as "the archive ends before the
  target": the missing segment is named;
* a replica built from another cluster's backup timed out showing the upstream's log: it fails
  at once with "database system identifier differs";
* a standby ahead of the promoted one could not follow and said only that it exited.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from pytest_pgdr import ConfigError, RecoveryError, RecoveryTarget, Topology
from pytest_pgdr.cluster.lsn import archive_gaps

FAST = 10.0  # seconds: these failures must come well before a wait's 60 s deadline
SEG = 16 << 20


@pytest.mark.parametrize(
    ("kind", "value", "form"),
    [
        ("xid", "abc", "positive integer"),
        ("xid", "0", "positive integer"),
        ("xid", "-5", "positive integer"),
        ("lsn", "0/XYZ", "X/X in hexadecimal"),
        ("lsn", "12345", "X/X in hexadecimal"),
        ("time", "2026-01-01 12:00:00", "with a time zone"),
        ("time", "yesterday", "with a time zone"),
        ("name", "", "not empty"),
        ("name", "é" * 32, "at most 63 bytes"),
    ],
)
def test_bad_target_values_are_refused_with_the_form(kind: str, value: str, form: str) -> None:
    with pytest.raises(ConfigError, match=f"Bad recovery target {kind}") as failure:
        RecoveryTarget(kind, value)
    assert form in str(failure.value)


def test_good_target_values_pass() -> None:
    assert RecoveryTarget.xid(748).value == "748"
    assert RecoveryTarget.lsn("0/3000148").value == "0/3000148"
    assert RecoveryTarget.lsn("1A/FF").value == "1A/FF"
    assert RecoveryTarget.time("2026-01-31 12:00:00.123+00").time_value is not None
    assert RecoveryTarget.time("2026-01-31 12:00:00 UTC").time_value is not None
    assert RecoveryTarget.time(dt.datetime.now(dt.UTC)).time_value is not None
    assert RecoveryTarget.name("n" * 63).value == "n" * 63


def test_archive_gaps_name_the_missing_segments() -> None:
    names = [f"00000001000000000000000{i}" for i in (2, 3, 5, 6)] + ["000000020000000000000007"]
    assert archive_gaps(names, "000000010000000000000002", SEG) == ["000000010000000000000004"]
    assert archive_gaps(names[:2], "000000010000000000000002", SEG) == []
    tl2 = ["000000010000000000000002", "000000020000000000000002", "000000020000000000000004"]
    assert archive_gaps(tl2, "000000010000000000000002", SEG) == ["000000020000000000000003"]


@pytest.mark.pgdr
def test_pitr_to_a_time_before_the_backup_is_refused(pgdr: Topology) -> None:
    primary = pgdr.primary()
    primary.query("CREATE TABLE t (id int PRIMARY KEY)")
    primary.query("INSERT INTO t SELECT generate_series(1, 100)")
    before = primary.scalar("SELECT clock_timestamp()")
    primary.query("INSERT INTO t SELECT generate_series(101, 200)")
    backup = pgdr.backup(primary)
    primary.query("INSERT INTO t SELECT generate_series(201, 300)")
    pgdr.wait_archived(primary)

    with pytest.raises(RecoveryError, match="lies before base backup") as failure:
        pgdr.restore(backup, RecoveryTarget.time(before), name="too_early")
    assert "Restore an older base backup" in str(failure.value)
    assert "too_early" not in pgdr.nodes, "no node was made for an impossible target"
    # a time after the backup still works (recovery stops at the first commit after it)
    after = primary.scalar("SELECT clock_timestamp()")
    primary.query("INSERT INTO t VALUES (301)")
    pgdr.wait_archived(primary)
    node = pgdr.restore(backup, RecoveryTarget.time(after), name="in_time")
    assert node.scalar("SELECT count(*) FROM t") == 300


@pytest.mark.pgdr
def test_missing_segment_under_a_named_target_is_named(pgdr: Topology) -> None:
    primary = pgdr.primary()
    primary.query("CREATE TABLE t (id int PRIMARY KEY, pad text)")
    backup = pgdr.backup(primary)
    for batch in range(3):
        primary.query(
            "INSERT INTO t SELECT g, repeat('x', 2000) FROM generate_series(%s::int, %s::int) g",
            [batch * 10000 + 1, batch * 10000 + 9000],
        )
        primary.switch_wal()
    primary.scalar("SELECT pg_create_restore_point('after_gap')")
    pgdr.wait_archived(primary)
    segments = pgdr.archive.segments()
    start = backup.extra["start_segment"]
    later = [s for s in segments if s > start]
    assert len(later) >= 4, segments
    missing = later[1]
    (pgdr.archive.wal / missing).unlink()

    started = time.monotonic()
    with pytest.raises(RecoveryError) as failure:
        pgdr.restore(
            backup,
            RecoveryTarget.name("after_gap"),
            name="gap",
            settings={"archive_mode": "off"},
        )
    text = str(failure.value)
    assert time.monotonic() - started < FAST
    assert f"WAL segment {missing} is missing" in text, text
    assert "The archive has a gap" in text
    assert "recovery ended before configured recovery target was reached" in text


@pytest.mark.pgdr
def test_replica_from_another_clusters_backup_fails_fast_naming_the_identifier(
    pgdr: Topology,
) -> None:
    one = pgdr.primary(name="one", archive=False)
    other = pgdr.primary(name="other", archive=False)
    foreign = pgdr.backup(other)
    replica = pgdr.replica(one, name="mixed", backup=foreign, slot=False)

    started = time.monotonic()
    with pytest.raises(RecoveryError) as failure:
        pgdr.wait_caught_up(one, replica)
    text = str(failure.value)
    assert time.monotonic() - started < FAST, "it waited for the deadline"
    assert "Mixed cannot stream from one: database system identifier differs" in text
    assert "another cluster" in text and "FATAL" in text, text
    assert str(one.system_identifier()) in text  # PostgreSQL's DETAIL names both


@pytest.mark.pgdr
def test_standby_ahead_of_the_promoted_one_says_why_it_cannot_follow(pgdr: Topology) -> None:
    old = pgdr.primary(name="old")
    old.query("CREATE TABLE t (id int PRIMARY KEY)")
    behind = pgdr.replica(old, name="behind")
    ahead = pgdr.replica(old, name="ahead")
    pgdr.wait_caught_up(old, behind)
    behind.stop()
    old.query("INSERT INTO t SELECT generate_series(1, 1000)")
    pgdr.wait_caught_up(old, ahead)
    old.crash()
    behind.start()
    pgdr.promote(behind)
    pgdr.wait_history_archived(2)

    with pytest.raises(RecoveryError) as failure:
        pgdr.follow(ahead, behind)
    text = str(failure.value)
    assert "Ahead cannot follow behind: it is ahead of the new timeline" in text, text
    assert "does not contain minimum recovery point" in text
    assert "Promote the most advanced standby" in text
