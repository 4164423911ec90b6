"""Physical backups (Lab 14 step 4; guide "Physical Backups (pg_basebackup)").

``pg_basebackup`` plain and gzip-compressed tar with streamed WAL, and a cold copy of a stopped
data directory. ``pg_verifybackup`` passes on each and fails, naming the file, on a copy of a
backup with one byte altered. Each backup restores to exactly the rows it should hold.

The primary holds the team's database (``pgdr_data``), written to after the backups (the
drills' ledger in schema ``pgdr_drill``): every restore gives back its whole fingerprint as of
its end point. The drill's own table ``t`` lives in ``postgres``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_pgdr import (
    Backup,
    Measurement,
    Node,
    RecoveryTarget,
    Topology,
    assert_same,
    fingerprint,
)
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr

INSPECT = {"archive_mode": "off"}  # restores that are only inspected stay out of the archive


def insert_rows(node: Node, first: int, last: int) -> None:
    node.query(
        "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(%s::int, %s::int) g",
        [first, last],
    )


def verify(pgdr: Topology, node: Node, backup: Backup) -> subprocess.CompletedProcess[str]:
    """``pg_verifybackup``, WAL included. It cannot parse WAL inside a tar backup (and reads no
    tar at all before PostgreSQL 18), so a tar backup is checked as is where it can be (files
    only), then fully once extracted."""
    if backup.fmt == "plain":
        return node.run_tool("pg_verifybackup", backup.path, check=False)
    if pgdr.major >= 18:
        proc = node.run_tool("pg_verifybackup", "--no-parse-wal", backup.path, check=False)
        if proc.returncode != 0:
            return proc
    return node.run_tool("pg_verifybackup", extract(pgdr, backup), check=False)


def extract(pgdr: Topology, backup: Backup) -> Path:
    out = pgdr.host.make_dir(pgdr.root / f"{backup.label}_extracted")
    wal = pgdr.host.make_dir(out / "pg_wal")
    suffix = ".tar.gz" if backup.compressed else ".tar"
    for tarball, dest in ((f"base{suffix}", out), (f"pg_wal{suffix}", wal)):
        proc = pgdr.host.run(["tar", "-xf", str(backup.path / tarball), "-C", str(dest)])
        assert proc.returncode == 0, proc.stderr
    pgdr.host.run(["cp", str(backup.manifest), str(out)])
    return out


def tamper(pgdr: Topology, backup: Backup, relfile: str) -> Path:
    """A copy of ``backup`` with one byte of ``relfile`` flipped (same size)."""
    copy = pgdr.root / f"{backup.label}_tampered"
    pgdr.host.copy_tree(backup.path, copy)
    byte = pgdr.host.read_bytes(copy / relfile, 4096, 1)
    pgdr.host.write_bytes(copy / relfile, bytes([byte[0] ^ 0xFF]), offset=4096)
    return copy


def test_basebackups_and_cold_copy_verify_and_restore(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary()
    pgdr_data.load(primary)
    ledger_table(primary, db)
    primary.query("CREATE TABLE t (id int PRIMARY KEY, pad text NOT NULL)")
    insert_rows(primary, 1, 1000)
    at_backup = fingerprint(primary)
    team_at_backup = fingerprint(primary, db)
    plain = pgdr.backup(primary, label="plain")
    tar = pgdr.backup(primary, label="tar_gz", fmt="tar", compress=True)
    insert_rows(primary, 1001, 2000)
    app_write(primary, db, 5)
    relfile = str(primary.scalar("SELECT pg_relation_filepath('t')"))
    final = fingerprint(primary)
    team_final = fingerprint(primary, db)
    pgdr.wait_archived(primary)
    primary.stop()
    cold = pgdr.cold_backup(primary, label="cold")
    pgdr_measure.record("plain_backup_bytes", plain.size_bytes())
    pgdr_measure.record("tar_gz_backup_bytes", tar.size_bytes())
    assert pgdr.host.names(tar.path) == [
        "backup_manifest",
        "base.tar.gz",
        "pg_wal.tar.gz",
    ]

    for backup in (plain, tar):
        proc = verify(pgdr, primary, backup)
        assert proc.returncode == 0, f"{backup.label}: {proc.stderr}"
        assert "backup successfully verified" in proc.stdout
    proc = primary.run_tool("pg_verifybackup", tamper(pgdr, plain, relfile), check=False)
    assert proc.returncode != 0, "a tampered backup must fail verification"
    assert f'checksum mismatch for file "{relfile}"' in proc.stderr, proc.stderr

    rto = pgdr_measure.declare_disaster()
    nodes = {
        "plain": (
            pgdr.restore(
                plain, RecoveryTarget.immediate(), name="from_plain", settings=INSPECT, wait=False
            ),
            RecoveryTarget.immediate(),
        ),
        "tar": (pgdr.restore(tar, name="from_tar", settings=INSPECT, wait=False), None),
        "cold": (pgdr.restore(cold, name="from_cold", settings=INSPECT, wait=False), None),
    }
    for node, target in nodes.values():
        pgdr.wait_recovery(node, target or RecoveryTarget.latest())
    rto.lap("restore 3 backups in parallel")
    prints = {key: fingerprint(node) for key, (node, _) in nodes.items()}
    team = {key: fingerprint(node, db) for key, (node, _) in nodes.items()}
    rto.stop("verify")
    assert_same(at_backup, prints["plain"], "plain backup restored to its end")
    assert_same(final, prints["tar"], "tar backup restored with the archive")
    assert_same(final, prints["cold"], "cold copy restored")
    assert_same(team_at_backup, team["plain"], f"{db} from the plain backup")
    assert_same(team_final, team["tar"], f"{db} from the tar backup", sequences="at_least")
    assert_same(team_final, team["cold"], f"{db} from the cold copy")
