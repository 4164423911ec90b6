"""Runbook: PITR after an accidental DELETE (Lab 14 step 5; guide "Performing PITR").

primary with WAL archive -> base backup -> rows -> restore point -> more rows -> DELETE ->
restore the base backup to the restore point and promote. Exactly the rows that existed at the
restore point come back, on a new timeline, and the node accepts writes.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import RecoveryTarget, assert_same, fingerprint

pytestmark = pytest.mark.pgdr


def insert_employees(node, first: int, count: int) -> None:
    node.query(
        "INSERT INTO employees (full_name, dept, salary)"
        " SELECT 'Employee ' || g, (ARRAY['IT','Finance','HR','Ops'])[mod(g, 4) + 1], 1000 + g"
        " FROM generate_series(%s::int, %s::int) g",
        [first, first + count - 1],
    )


def test_pitr_to_restore_point_after_accidental_delete(pgdr, pgdr_primary, pgdr_measure):
    primary = pgdr_primary
    backup = pgdr.backup(primary)

    insert_employees(primary, 1, 1000)
    primary.scalar("SELECT pg_create_restore_point('before_delete')")
    expected = fingerprint(primary)
    insert_employees(primary, 1001, 500)
    primary.query("DELETE FROM employees WHERE dept = 'Finance'")
    pgdr.wait_archived(primary)
    assert primary.scalar("SELECT count(*) FROM employees WHERE dept = 'Finance'") == 0

    rto = pgdr_measure.declare_disaster()
    restored = pgdr.restore(backup, RecoveryTarget.name("before_delete"), stopwatch=rto)
    actual = fingerprint(restored)
    rto.stop("verify")
    pgdr_measure.record_throughput(backup.size_bytes(), phase="restore base backup")

    assert_same(expected, actual, "data restored to 'before_delete'", sequences="at_least")
    assert actual.rows("public.employees") == 1003
    assert restored.scalar("SELECT count(*) FROM employees WHERE dept = 'Finance'") > 0
    assert restored.log.grep(r'recovery stopping at restore point "before_delete"')
    assert restored.timeline() == primary.timeline() + 1
    pgdr.wait_history_archived(restored.timeline())
    restored.query("INSERT INTO employees (full_name, dept, salary) VALUES ('After', 'IT', 1)")
    assert restored.scalar("SELECT count(*) FROM employees") == 1004
