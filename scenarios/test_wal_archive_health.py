"""WAL archive health (PostgreSQL's 020_archive_status.pl; guide "WAL Archive Monitoring").

An archive that cannot be written shows in ``pg_stat_archiver.failed_count`` while the
segments wait in ``pg_wal`` with ``.ready`` status files; once fixed the archive catches up and
a PITR to the end of it gives every row. A missing or a corrupt segment in the archive makes
PITR fail loudly, never a silent restore with fewer rows. And how much the archive grows per
10,000 rows is measured.

The primary holds the team's database (``pgdr_data``), written to during the outage (the
drills' ledger, schema ``pgdr_drill``); the PITR gives back its whole fingerprint. The drill's
own table ``t`` lives in ``postgres``.
"""

from __future__ import annotations

import os
import time

import pytest

from pytest_pgdr import (
    Measurement,
    Node,
    RecoveryError,
    RecoveryTarget,
    Topology,
    assert_same,
    fingerprint,
)
from pytest_pgdr.basics.wait import DEFAULT_TIMEOUT
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr

INSPECT = {"archive_mode": "off"}  # restores that are only inspected stay out of the archive
READY_SQL = "SELECT name FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready' ORDER BY 1"


def insert_rows(node: Node, first: int, last: int) -> None:
    node.query(
        "INSERT INTO t SELECT g, repeat('x', 50) FROM generate_series(%s::int, %s::int) g",
        [first, last],
    )


def new_primary(pgdr: Topology, data: TeamData) -> Node:
    primary = pgdr.primary()
    data.load(primary)
    ledger_table(primary, data.dbname)
    primary.query("CREATE TABLE t (id int PRIMARY KEY, pad text NOT NULL)")
    insert_rows(primary, 1, 1000)
    return primary


def fill_segments(node: Node, first: int, count: int) -> dict[str, int]:
    """Write ``count`` batches of 1000 rows, each closing its own segment: for each segment,
    how many of its bytes hold records."""
    written = {}
    for batch in range(count):
        start = first + batch * 1000
        insert_rows(node, start, start + 999)
        lsn = node.lsn()
        written[node.walfile_name(lsn)] = lsn.value % node.wal_segment_size()
        node.switch_wal()
    return written


def test_archive_outage_shows_then_drains_without_loss(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = new_primary(pgdr, pgdr_data)
    backup = pgdr.backup(primary)
    wal_dir = pgdr.archive.wal
    away = wal_dir.with_name("wal_unreachable")
    pgdr.host.rename(wal_dir, away)  # the archive's mount is gone
    try:
        app_write(primary, db, 5)  # the team's commits wait for the archive too
        stuck = list(fill_segments(primary, 1001, 2))
        primary.poll_query(
            "SELECT failed_count > 0 FROM pg_stat_archiver", "archive_command to fail"
        )
        ready = [row[0] for row in primary.query(READY_SQL)]
        assert [f"{name}.ready" for name in stuck] == ready[-2:], ready
        assert all(pgdr.host.exists(primary.datadir / "pg_wal" / name) for name in stuck), (
            "WAL waiting for the archive must stay in pg_wal"
        )
        last = primary.scalar("SELECT last_archived_wal FROM pg_stat_archiver")
        assert last is None or last < stuck[0]
    finally:
        pgdr.host.rename(away, wal_dir)

    outage_over = time.perf_counter()
    primary.reload()  # the operator fixes the archive and reloads: the archiver wakes up
    pgdr.wait_archived(primary)
    primary.poll_query(f"SELECT NOT EXISTS ({READY_SQL})", "no .ready files left")
    pgdr_measure.record("archive_catch_up_s", round(time.perf_counter() - outage_over, 4))
    pgdr_measure.record(
        "archive_failed_count", primary.scalar("SELECT failed_count FROM pg_stat_archiver")
    )
    assert all(pgdr.archive.has(name) for name in stuck)

    expected, team = fingerprint(primary), fingerprint(primary, db)
    rto = pgdr_measure.declare_disaster()
    restored = pgdr.restore(backup, settings=INSPECT, stopwatch=rto)
    got, got_team = fingerprint(restored), fingerprint(restored, db)
    rto.stop("verify")
    assert_same(expected, got, "PITR to the end of the drained archive")
    assert_same(team, got_team, f"{db} after PITR to the end", sequences="at_least")


def damage(pgdr: Topology, segment: str, how: str, written: int) -> None:
    path = pgdr.archive.wal / segment
    if how == "missing":
        pgdr.host.remove_file(path)
        return
    # garbage in the middle of the records, size unchanged
    pgdr.host.write_bytes(path, os.urandom(64), offset=written // 2)


@pytest.mark.parametrize("how", ["missing", "corrupt"])
def test_damaged_segment_fails_pitr_loudly(pgdr: Topology, pgdr_data: TeamData, how: str) -> None:
    primary = new_primary(pgdr, pgdr_data)
    backup = pgdr.backup(primary)
    written = fill_segments(primary, 1001, 3)
    primary.scalar("SELECT pg_create_restore_point('after_damage')")
    pgdr.wait_archived(primary)
    middle = sorted(written)[1]
    damage(pgdr, middle, how, written[middle])

    targets = {"latest": RecoveryTarget.latest(), "name": RecoveryTarget.name("after_damage")}
    started = time.monotonic()
    nodes = {
        key: pgdr.restore(backup, target, name=f"to_{key}", settings=INSPECT, wait=False)
        for key, target in targets.items()
    }
    for key, node in nodes.items():
        with pytest.raises(RecoveryError) as failure:
            pgdr.wait_recovery(node, targets[key])
        assert not node.is_running(), f"{how}/{key}: the partial node must not stay up"
        expected = (
            "stopped early"
            if key == "latest"
            else "recovery ended before configured recovery target was reached"
        )
        assert expected in str(failure.value), f"{how}/{key}: {failure.value}"
        if how == "missing" and key == "name":  # the hole is named, not just "ends before"
            assert f"WAL segment {middle} is missing" in str(failure.value), failure.value
    assert time.monotonic() - started < DEFAULT_TIMEOUT / 4, "failing must not wait for a deadline"


def test_archive_growth_per_10k_rows(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    primary = new_primary(pgdr, pgdr_data)
    pgdr.wait_archived(primary)
    archived_before, start = pgdr.archive.wal_bytes(), primary.lsn()
    insert_rows(primary, 1001, 11_000)
    generated = primary.lsn() - start
    pgdr.wait_archived(primary)
    archived = pgdr.archive.wal_bytes() - archived_before
    pgdr_measure.record("wal_bytes_per_10k_rows", generated)
    pgdr_measure.record("archived_bytes_per_10k_rows", archived)
    assert 0 < generated <= archived, "the archive holds every byte of WAL written"
