"""Runbook: PITR after an accidental DELETE (Lab 14 step 5; guide "Performing PITR").

primary with WAL archive and the team's database -> base backup -> writes -> restore point ->
more writes -> DELETE of the victim table -> restore the base backup to the restore point and
promote. Exactly the database as it was at the restore point comes back (every table, schema
object and sequence), on a new timeline, and the node accepts writes.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import RecoveryTarget, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import accidental_delete, app_write, ledger_table

pytestmark = pytest.mark.pgdr


def test_pitr_to_restore_point_after_accidental_delete(pgdr, pgdr_primary, pgdr_data, pgdr_measure):
    primary, db = pgdr_primary, pgdr_data.dbname
    victim = pgdr_data.victim(primary)
    ledger = ledger_table(primary, db)
    backup = pgdr.backup(primary)

    kept = app_write(primary, db, 20)  # after the backup: replayed from the archive
    primary.scalar("SELECT pg_create_restore_point('before_delete')")
    expected = fingerprint(primary, db)
    lost = app_write(primary, db, 5)  # after the restore point: must not come back
    accident = accidental_delete(primary, db, victim)
    if accident.deleted == 0:
        pytest.skip(f"the victim table {victim} is empty: deleting nothing is no disaster")
    pgdr.wait_archived(primary)

    rto = pgdr_measure.declare_disaster()
    restored = pgdr.restore(backup, RecoveryTarget.name("before_delete"), stopwatch=rto)
    actual = fingerprint(restored, db)
    rto.stop("verify")
    pgdr_measure.record_throughput(backup.size_bytes(), phase="restore base backup")

    assert_same(expected, actual, "data restored to 'before_delete'", sequences="at_least")
    assert actual.rows(victim) == accident.deleted
    ids = {r[0] for r in restored.query(f"SELECT id FROM {ledger}", dbname=db)}
    assert set(kept) <= ids and not set(lost) & ids
    assert restored.log.grep(r'recovery stopping at restore point "before_delete"')
    assert restored.timeline() == primary.timeline() + 1
    pgdr.wait_history_archived(restored.timeline())
    assert app_write(restored, db, 1)[0] > max(kept)
