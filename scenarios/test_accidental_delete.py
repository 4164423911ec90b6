"""Runbook: accidental DELETE (Lab 14 steps 3 and 5; guide "Restore Strategies").

``DELETE FROM employees WHERE dept = 'Finance'`` hits the ``shop`` database (``pgdr_dataset``).
Two ways back:

* from the last logical dump: restore it into a new database and swap it in with
  ``ALTER DATABASE ... RENAME``; every write made after the dump is lost, and the drill counts
  exactly those rows (its RPO) against a client-side ledger of acknowledged writes;
* point-in-time recovery of a base backup to just before the DELETE, by its transaction id
  (``recovery_target_xid``, exclusive) or by the server's clock read just before it
  (``recovery_target_time``): nothing committed before the DELETE is lost.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pytest_pgdr import Node, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.drill.dataset import Dataset, count_missing, create_database
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.drill.verify import assert_indexes_ok

pytestmark = pytest.mark.pgdr

DB = "shop"
DEPT = "Finance"
WRITES = 25  # orders the application commits, one per transaction, before the DELETE


@pytest.fixture
def dataset(pgdr_dataset: Dataset) -> Dataset:
    """The data this drill protects (override ``pgdr_dataset`` in conftest.py)."""
    return pgdr_dataset


def bad_delete(node: Node) -> dict[str, Any]:
    """The accident, in one transaction: its xid, the server clock just before, rows hit."""
    with node.connect(DB, autocommit=False) as conn:
        before = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
        deleted = conn.execute("DELETE FROM employees WHERE dept = %s", [DEPT]).rowcount
        xid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]  # type: ignore[index]
        conn.commit()
    return {"time": before, "xid": xid, "deleted": deleted}


def finance_rows(node: Node) -> int:
    return int(node.scalar("SELECT count(*) FROM employees WHERE dept = %s", [DEPT], dbname=DB))


def app_writes(node: Node, dataset: Dataset) -> list[int]:
    """The client-side ledger: ids of orders committed (and acknowledged) one at a time."""
    return [dataset.write_more(node, 1, DB)[0] for _ in range(WRITES)]


def record_loss(measure: Measurement, lost: int) -> None:
    """RPO of a drill whose ledger holds one row per commit."""
    measure.record("rpo_rows_lost", lost)
    measure.record_rpo(lost_commits=lost)


def swap_in(node: Node, restored: str) -> None:
    """Put ``restored`` in the damaged database's place; keep the damaged one for forensics."""
    node.close_connections()
    node.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        [DB],
    )
    node.query(f"ALTER DATABASE {DB} RENAME TO {DB}_damaged")
    node.query(f"ALTER DATABASE {restored} RENAME TO {DB}")


def test_restore_last_dump_and_swap(
    pgdr: Topology, dataset: Dataset, pgdr_measure: Measurement
) -> None:
    primary = pgdr.primary(archive=False)
    dataset.load(primary, DB)
    dump = pgdr.host.make_dir(pgdr.root / "dumps") / "nightly.dump"
    primary.run_tool("pg_dump", "-Fc", "-f", dump, "-d", DB)
    expected = fingerprint(primary, DB)
    written = app_writes(primary, dataset)  # acknowledged, after the dump
    assert bad_delete(primary)["deleted"] == dataset.employees_in(DEPT)

    rto = pgdr_measure.declare_disaster()
    create_database(primary, f"{DB}_restore")
    primary.run_tool("pg_restore", "-j", "2", "-d", f"{DB}_restore", dump)
    rto.lap("restore dump")
    swap_in(primary, f"{DB}_restore")
    rto.lap("swap databases")
    actual = fingerprint(primary, DB)
    rto.stop("verify")

    assert_same(expected, actual, f"{DB} restored from the last dump")
    assert finance_rows(primary) == dataset.employees_in(DEPT)
    assert_indexes_ok(primary, DB)
    lost = count_missing(primary, "orders", written, DB)
    record_loss(pgdr_measure, lost)
    assert lost == WRITES, f"expected exactly the {WRITES} orders written after the dump lost"
    assert count_missing(primary, "orders", written, f"{DB}_damaged") == 0, (
        "the damaged database must still hold the lost orders (for manual recovery)"
    )


def pitr_target(kind: str, accident: dict[str, Any]) -> RecoveryTarget:
    if kind == "xid":
        return RecoveryTarget.xid(accident["xid"], inclusive=False)
    when: dt.datetime = accident["time"]
    return RecoveryTarget.time(when)


def stop_line(kind: str, accident: dict[str, Any]) -> str:
    """The log line recovery must print. By time, an autovacuum commit may land between the
    clock reading and the DELETE's commit and be the one recovery stops before."""
    xid = accident["xid"] if kind == "xid" else r"\d+"
    return rf"recovery stopping before commit of transaction {xid}, time "


@pytest.mark.parametrize("kind", ["xid", "time"])
def test_pitr_to_just_before_the_delete(
    pgdr: Topology, dataset: Dataset, pgdr_measure: Measurement, kind: str
) -> None:
    primary = pgdr.primary()
    dataset.load(primary, DB)
    backup = pgdr.backup(primary)
    written = app_writes(primary, dataset)  # after the backup: replayed from WAL
    expected = fingerprint(primary, DB)
    accident = bad_delete(primary)
    assert accident["deleted"] == dataset.employees_in(DEPT)
    pgdr.wait_archived(primary)

    rto = pgdr_measure.declare_disaster()
    restored = pgdr.restore(backup, pitr_target(kind, accident), stopwatch=rto)
    actual = fingerprint(restored, DB)
    rto.stop("verify")

    assert_same(
        expected, actual, f"{DB} recovered to just before the DELETE ({kind})", sequences="at_least"
    )
    assert finance_rows(restored) == dataset.employees_in(DEPT)
    lost = count_missing(restored, "orders", written, DB)
    record_loss(pgdr_measure, lost)
    assert lost == 0
    assert restored.log.grep(stop_line(kind, accident))
    assert restored.timeline() == primary.timeline() + 1
    assert_indexes_ok(restored, DB)
