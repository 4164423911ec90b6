"""Incremental backups (PostgreSQL 17+; upstream pg_combinebackup/t/002_compare_backups.pl).

With ``summarize_wal = on``: a full backup, two incrementals chained on it, and
``pg_combinebackup`` of the chain. A PITR of the combined backup to an LSN gives exactly what a
PITR of the full backup alone (replaying all the WAL) gives at the same LSN: identical
``pg_dumpall`` output and fingerprints. A chain in the wrong order, or with a link missing, is
refused with pg_combinebackup's own message.

The primary holds the team's database (``pgdr_data``), written to between the backups (the
drills' ledger, schema ``pgdr_drill``): its whole fingerprint at the LSN comes back from both.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import (
    Backup,
    Measurement,
    Node,
    RecoveryTarget,
    ToolError,
    Topology,
    assert_same,
    fingerprint,
)
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

pytestmark = pytest.mark.pgdr(min_version=17)

INSPECT = {"archive_mode": "off"}  # restores that are only inspected stay out of the archive


def insert_rows(node: Node, first: int, last: int) -> None:
    node.query(
        "INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(%s::int, %s::int) g",
        [first, last],
    )


def dumpall(node: Node) -> list[str]:
    """``pg_dumpall`` output, without the random ``\\restrict`` keys of recent minor releases."""
    out = node.run_tool("pg_dumpall", "--no-role-passwords").stdout
    keys = ("\\restrict", "\\unrestrict")
    return [line for line in out.splitlines() if not line.startswith(keys)]


def data_bytes(pgdr: Topology, backup: Backup) -> int:
    """Bytes of data files, leaving out the streamed WAL (whole 16 MB segments)."""
    wal = pgdr.host.file_sizes(backup.path / "pg_wal")
    return pgdr.host.tree_size(backup.path) - sum(wal.values())


def build_chain(pgdr: Topology, data: TeamData) -> tuple[Node, list[Backup]]:
    primary = pgdr.primary(settings={"summarize_wal": True})
    data.load(primary)
    ledger_table(primary, data.dbname)
    primary.query("CREATE TABLE t (id int PRIMARY KEY, pad text NOT NULL)")
    insert_rows(primary, 1, 5000)
    full = pgdr.backup(primary, label="full")
    insert_rows(primary, 5001, 6000)
    primary.query("UPDATE t SET pad = 'updated' WHERE id % 10 = 0")
    app_write(primary, data.dbname, 3)
    incr1 = pgdr.backup(primary, label="incr1", incremental=full)
    app_write(primary, data.dbname, 3)
    insert_rows(primary, 6001, 7000)
    primary.query("DELETE FROM t WHERE id % 7 = 0")
    incr2 = pgdr.backup(primary, label="incr2", incremental=incr1)
    return primary, [full, incr1, incr2]


def test_combined_chain_restores_like_the_full_backup(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary, chain = build_chain(pgdr, pgdr_data)
    full, incr1, incr2 = chain
    insert_rows(primary, 7001, 8000)
    app_write(primary, db, 3)
    lsn = primary.lsn()
    expected = fingerprint(primary)
    team = fingerprint(primary, db)
    insert_rows(primary, 8001, 9000)
    pgdr.wait_archived(primary)
    combined = pgdr.combine(chain, label="combined")
    for backup in (full, combined):
        proc = primary.run_tool("pg_verifybackup", backup.path, check=False)
        assert proc.returncode == 0, f"{backup.label}: {proc.stderr}"
    sizes = {backup.label: data_bytes(pgdr, backup) for backup in chain + [combined]}
    for label, size in sizes.items():
        pgdr_measure.record(f"{label}_data_bytes", size)
    assert sizes["incr2"] < sizes["full"] / 2, f"an incremental holds changed blocks only: {sizes}"

    target = RecoveryTarget.lsn(lsn)
    from_full = pgdr.restore(full, target, name="from_full", settings=INSPECT, wait=False)
    rto = pgdr_measure.declare_disaster()
    from_combined = pgdr.restore(
        combined, target, name="from_combined", settings=INSPECT, stopwatch=rto
    )
    got = fingerprint(from_combined)
    got_team = fingerprint(from_combined, db)
    rto.stop("verify")
    pgdr.wait_recovery(from_full, target)

    assert_same(expected, got, "PITR of the combined backup")
    assert_same(expected, fingerprint(from_full), "PITR of the full backup")
    assert_same(team, got_team, f"{db} from the combined backup", sequences="at_least")
    assert_same(team, fingerprint(from_full, db), f"{db} from the full", sequences="at_least")
    assert dumpall(from_combined) == dumpall(from_full), "pg_dumpall outputs differ"
    assert got.rows("public.t") == 8000 - 7000 // 7, "ids 1..8000 less the multiples of 7 <= 7000"


CHAIN_ERRORS = {
    (1, 0, 2): "is a full backup, but only the first backup should be a full backup",
    (1, 2): "is an incremental backup, but the first backup should be a full backup",
    (0, 2): "but expected",  # incr1 is missing: incr2 does not start where the chain ends
}


def test_wrong_chain_is_refused_with_pg_combinebackup_message(
    pgdr: Topology, pgdr_data: TeamData
) -> None:
    primary, chain = build_chain(pgdr, pgdr_data)
    for order, message in CHAIN_ERRORS.items():
        with pytest.raises(ToolError) as failure:
            pgdr.combine([chain[i] for i in order])
        assert "pg_combinebackup: error:" in str(failure.value)
        assert message in str(failure.value), f"order {order}: {failure.value}"

    primary.configure(summarize_wal=False)
    primary.reload()
    with pytest.raises(
        ToolError, match="incremental backups cannot be taken unless WAL summarization is enabled"
    ):
        pgdr.backup(primary, incremental=chain[-1])
