"""Two clusters archiving into one path, a classic operator mistake (PostgreSQL's docs on
``archive_command``: it must refuse to overwrite a file already there; pgBackRest and WAL-G
check the system identifier for the same reason).

A second, unrelated cluster (its own system identifier) is set up with the first one's
archive path. Its segment names collide with the first's (both start on timeline 1 at the same
place), so the harness's archive command refuses them: the second cluster's archiver fails
(``pg_stat_archiver.failed_count``, ``last_failed_wal``, the server log line), and the first
cluster's archive stays intact: its segments byte for byte, and a PITR from its backup gives
exactly its database (fingerprint) and every marker row.
"""

from __future__ import annotations

import hashlib

import pytest

from pytest_pgdr import Measurement, Node, Topology, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr

INSPECT = {"archive_mode": "off"}  # the restore is only inspected: it stays out of the archive
FAILED = r"archive command failed with exit code \d+"
ARCHIVER = "SELECT failed_count, last_failed_wal, last_archived_wal FROM pg_stat_archiver"


def archive_digests(pgdr: Topology) -> dict[str, str]:
    """Every file in the archive's WAL directory and a digest of its bytes."""
    wal = pgdr.archive.wal
    return {
        name: hashlib.sha256(pgdr.host.read_bytes(wal / name)).hexdigest()
        for name in pgdr.host.names(wal)
    }


def markers(node: Node, ledger: str, dbname: str) -> set[int]:
    return {row[0] for row in node.query(f"SELECT id FROM {ledger}", dbname=dbname)}


def test_second_cluster_cannot_overwrite_the_archive(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    first = pgdr.primary(name="first")
    pgdr_data.load(first)
    ledger = ledger_table(first, db)
    backup = pgdr.backup(first)
    written = app_write(first, db, 10)
    pgdr.wait_archived(first)
    archived = archive_digests(pgdr)

    second = pgdr.primary(name="second")  # the mistake: the same archive_command and path
    assert second.system_identifier() != first.system_identifier()
    offset = second.log.offset()
    second.query("CREATE TABLE other_app (id int)")
    refused = second.walfile_name(second.switch_wal())
    assert refused in archived, f"{refused} does not collide with the first cluster's archive"
    second.poll_query(
        f"SELECT failed_count > 0 AND last_failed_wal = '{refused}' FROM pg_stat_archiver",
        f"the second cluster's archiver to fail on {refused}",
    )
    failed_count, last_failed, last_archived = second.query(ARCHIVER)[0]
    failures = second.log.grep(FAILED, offset)
    assert failures, second.log.tail(20, offset)
    assert last_archived is None, f"the second cluster archived {last_archived}"

    written += app_write(first, db, 10)  # the first cluster archives on, undisturbed
    pgdr.wait_archived(first)
    assert first.scalar("SELECT failed_count FROM pg_stat_archiver") == 0
    now = archive_digests(pgdr)
    assert {k: now[k] for k in archived} == archived, "an archived segment was overwritten"
    assert not [name for name in now if name.startswith(".")], "a partial copy was left"
    expected = fingerprint(first, db)

    rto = pgdr_measure.declare_disaster()
    restored = pgdr.restore(backup, settings=INSPECT, stopwatch=rto)
    actual = fingerprint(restored, db)
    rto.stop("verify")

    assert_same(expected, actual, "PITR from the first cluster's archive", sequences="at_least")
    assert restored.system_identifier() == first.system_identifier()
    assert markers(restored, ledger, db) == set(written) == markers(first, ledger, db)
    pgdr_measure.record_rpo(lost_commits=len(set(written) - markers(restored, ledger, db)))
    pgdr_measure.record("second cluster failed_count", failed_count)
    pgdr_measure.record("second cluster last_failed_wal", last_failed)
    pgdr_measure.attach_log(second, offset, pattern=FAILED + "|failed archive command")
