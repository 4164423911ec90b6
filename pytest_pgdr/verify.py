"""Fingerprints of a database, compared table by table, to prove recovered data is exact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .node import Node

TABLES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1
"""
SEQUENCES_SQL = """
SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences ORDER BY 1
"""
CONSTRAINTS_SQL = """
SELECT format('%s %s', conrelid::regclass, conname), pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace NOT IN
  (SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema'))
ORDER BY 1
"""
INDEXES_SQL = """
SELECT format('%I.%I', schemaname, indexname), indexdef FROM pg_indexes
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""


@dataclass
class TablePrint:
    rows: int
    digest: str


@dataclass
class Fingerprint:
    """Per table row count and an order-independent content hash; sequences; schema objects."""

    tables: dict[str, TablePrint] = field(default_factory=dict)
    sequences: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, str] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)

    def rows(self, table: str) -> int:
        return self.tables[table].rows

    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


def table_print(node: Node, table: str, dbname: str = "postgres") -> TablePrint:
    """Row count and an order-independent hash (of the sorted per-row md5s) of one table."""
    count, digest = node.query(
        f"SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), ''))"  # noqa: S608
        f" FROM (SELECT md5(t::text) AS h FROM {table} t) s", dbname=dbname)[0]
    return TablePrint(int(count), str(digest))


def fingerprint(node: Node, dbname: str = "postgres") -> Fingerprint:
    fp = Fingerprint()
    for (table,) in node.query(TABLES_SQL, dbname=dbname):
        fp.tables[table] = table_print(node, table, dbname)
    fp.sequences = dict(node.query(SEQUENCES_SQL, dbname=dbname))  # type: ignore[arg-type]
    fp.constraints = dict(node.query(CONSTRAINTS_SQL, dbname=dbname))  # type: ignore[arg-type]
    fp.indexes = dict(node.query(INDEXES_SQL, dbname=dbname))  # type: ignore[arg-type]
    return fp


def differences(expected: Fingerprint, actual: Fingerprint, sequences: str = "exact") -> list[str]:
    """Human-readable differences, one line each; empty when the fingerprints are equal.

    ``sequences="at_least"`` accepts sequences that are ahead: after crash recovery or PITR a
    sequence may jump forward (PostgreSQL logs sequence values in advance), never back.
    """
    out: list[str] = []
    for name in sorted(set(expected.tables) | set(actual.tables)):
        want, got = expected.tables.get(name), actual.tables.get(name)
        if want is None:
            out.append(f"table {name}: unexpected ({got.rows if got else 0} rows)")
        elif got is None:
            out.append(f"table {name}: missing (expected {want.rows} rows)")
        elif want.rows != got.rows:
            out.append(f"table {name}: {got.rows} rows, expected {want.rows}")
        elif want.digest != got.digest:
            out.append(f"table {name}: same {got.rows} rows count but different content")
    out += _sequence_differences(expected.sequences, actual.sequences, sequences)
    for label, want_map, got_map in (
        ("constraint", expected.constraints, actual.constraints),
        ("index", expected.indexes, actual.indexes),
    ):
        for name in sorted(set(want_map) | set(got_map)):
            if want_map.get(name) != got_map.get(name):
                out.append(f"{label} {name}: {got_map.get(name)!r}, expected {want_map.get(name)!r}")
    return out


def _sequence_differences(want: dict[str, Any], got: dict[str, Any], mode: str) -> list[str]:
    out = []
    for name in sorted(set(want) | set(got)):
        a, b = want.get(name), got.get(name)
        if a == b:
            continue
        ahead_ok = mode == "at_least" and a is not None and b is not None and int(b) >= int(a)
        behind_ok = mode == "at_least" and a is None and b is not None
        if not (ahead_ok or behind_ok):
            out.append(f"sequence {name}: last_value {b!r}, expected {a!r}"
                       + (" or more" if mode == "at_least" else ""))
    return out


def assert_same(expected: Fingerprint, actual: Fingerprint, what: str = "recovered data",
                sequences: str = "exact") -> None:
    diff = differences(expected, actual, sequences)
    if diff:
        raise AssertionError(f"{what} differs from what was expected:\n  " + "\n  ".join(diff))
