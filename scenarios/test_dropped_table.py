"""Runbook: recovering from a dropped table (guide "Real-World Scenarios", scenario 3).

``DROP TABLE orders`` on the live primary, while the application keeps writing to the other
tables. The primary is not rewound: a side instance is restored from the base backup and
recovered to just before the DROP (by its transaction id, exclusive) and left paused there,
read-only, the way the guide's ``recovery_target_action = 'pause'`` leaves it.

The trap the guide does not mention: paused just before the DROP's commit, the side instance
has already replayed the DROP's ACCESS EXCLUSIVE lock, and holds it for the unfinished
transaction. Reading ``orders`` there (and so ``pg_dump``) waits forever. The drill proves the
lock is held (``lock_timeout``), then ends recovery with ``pg_wal_replay_resume()``: the side
instance promotes, the unfinished DROP is rolled back and the table can be read. (A target
before the lock, e.g. an LSN taken before the DROP started, avoids the lock altogether.)

``pg_dump -t orders`` there takes the table with its key, index, foreign key and sequence,
and ``pg_restore`` of that whole dump puts it back into the live primary.

Not ``pg_restore -t orders`` as the guide's step 7 has it: pg_restore's ``-t`` restores the
table and its rows only, without its primary key, index, foreign key or sequence default.

Proven by fingerprints: ``orders`` (rows, content, constraints, indexes, sequence) is exactly
what it was before the DROP, the orders written after the base backup came back through WAL
replay, and the rows written to the other tables after the DROP are still there.
"""

from __future__ import annotations

import psycopg
import pytest

from pytest_pgdr import Fingerprint, Node, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.drill.dataset import Dataset, count_missing
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.drill.verify import assert_indexes_ok

pytestmark = pytest.mark.pgdr

DB = "shop"
TABLE = "public.orders"
ORDERS_AFTER_BACKUP = 25
USERS_AFTER_DROP = 7
EMPLOYEES_AFTER_DROP = 4


@pytest.fixture
def dataset(pgdr_dataset: Dataset) -> Dataset:
    """The data this drill protects (override ``pgdr_dataset`` in conftest.py)."""
    return pgdr_dataset


def drop_orders(node: Node) -> str:
    """The accident; returns the xid of the transaction that dropped the table."""
    with node.connect(DB, autocommit=False) as conn:
        conn.execute("DROP TABLE orders")
        xid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]  # type: ignore[index]
        conn.commit()
    return str(xid)


def keep_writing(node: Node) -> None:
    """The application goes on writing to the tables it still has."""
    node.query(
        "INSERT INTO users (full_name, email, created_at) SELECT 'Late User ' || g,"
        " 'late.' || g || '@example.com', now() FROM generate_series(1, %s) g",
        [USERS_AFTER_DROP],
        dbname=DB,
    )
    node.query(
        "INSERT INTO employees (full_name, dept, salary) SELECT 'Late Hire ' || g, 'Ops',"
        " 50000 FROM generate_series(1, %s) g",
        [EMPLOYEES_AFTER_DROP],
        dbname=DB,
    )


def assert_drop_lock_held(side: Node) -> None:
    """Paused before the DROP's commit, the side instance holds the DROP's lock on orders:
    ``pg_locks`` shows it granted (to the startup process) and a read cannot get past it."""
    held = side.scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'relation'"
        " AND mode = 'AccessExclusiveLock' AND granted AND relation ="
        " (SELECT oid FROM pg_class WHERE relname = 'orders')",
        dbname=DB,
    )
    assert held == 1, "the side instance should hold the DROP's lock on orders"
    with side.connect(DB) as conn:
        conn.execute("SET lock_timeout = '10ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute("SELECT count(*) FROM orders")


def with_table(now: Fingerprint, then: Fingerprint, table: str) -> Fingerprint:
    """``now`` with ``table`` (and what hangs on it) as it was in ``then``."""
    return now.merged(then.only(table))


def test_pitr_side_instance_then_restore_table(
    pgdr: Topology, dataset: Dataset, pgdr_measure: Measurement
) -> None:
    primary = pgdr.primary()
    dataset.load(primary, DB)
    backup = pgdr.backup(primary)
    written = [dataset.write_more(primary, 1, DB)[0] for _ in range(ORDERS_AFTER_BACKUP)]
    before = fingerprint(primary, DB)
    assert before.rows(TABLE) == dataset.counts["orders"] + ORDERS_AFTER_BACKUP
    xid = drop_orders(primary)
    keep_writing(primary)
    after = fingerprint(primary, DB)
    assert TABLE not in after.tables
    assert after.rows("public.users") == dataset.counts["users"] + USERS_AFTER_DROP
    assert after.rows("public.employees") == dataset.counts["employees"] + EMPLOYEES_AFTER_DROP
    pgdr.wait_archived(primary)

    rto = pgdr_measure.declare_disaster()
    side = pgdr.restore(
        backup, RecoveryTarget.xid(xid, inclusive=False, action="pause"), name="side", stopwatch=rto
    )
    assert side.replay_pause_state() == "paused"
    assert side.log.grep(rf"recovery stopping before commit of transaction {xid}, time ")
    assert_drop_lock_held(side)
    side.scalar("SELECT pg_wal_replay_resume()")
    pgdr.wait_promoted(side)
    rto.lap("end recovery of side instance")
    dump = pgdr.host.make_dir(pgdr.root / "dumps") / "orders.dump"
    side.run_tool("pg_dump", "-Fc", "--lock-wait-timeout=30s", "-t", "orders", "-f", dump, "-d", DB)
    rto.lap("dump table from side instance")
    primary.run_tool("pg_restore", "-d", DB, dump)
    rto.lap("restore table into primary")
    final = fingerprint(primary, DB)
    rto.stop("verify")

    assert_same(
        with_table(after, before, TABLE),
        final,
        "primary after restoring orders",
        sequences="at_least",
    )
    lost = count_missing(primary, "orders", written, DB)
    pgdr_measure.record("rpo_rows_lost", lost)
    pgdr_measure.record_rpo(lost_commits=lost)  # one order per commit in ``written``
    assert lost == 0
    assert_indexes_ok(primary, DB)
    new_id = primary.scalar(
        "INSERT INTO orders (user_id, amount, status, placed_at)"
        " VALUES (1, 1, 'new', now()) RETURNING id",
        dbname=DB,
    )
    assert new_id > max(written), "the restored sequence hands out an id already used"
