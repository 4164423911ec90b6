"""Fingerprints of a database, compared table by table, to prove recovered data is exact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from pytest_pgdr.cluster.node import Node

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

LARGE_OBJECTS_SQL = """
SELECT (SELECT count(*) FROM pg_largeobject_metadata),
       md5(coalesce(string_agg(h, '' ORDER BY h), ''))
FROM (SELECT md5('lo ' || oid) AS h FROM pg_largeobject_metadata
      UNION ALL
      SELECT md5(loid || ':' || pageno || ':' || md5(data)) FROM pg_largeobject) s
"""
BTREE_INDEXES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam
WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1
"""
EMPTY_DIGEST = "d41d8cd98f00b204e9800998ecf8427e"  # md5(''): what an empty table hashes to


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
    #: count and hash of all large objects (oid, pages, bytes); the default is "none at all"
    large_objects: TablePrint = field(default_factory=lambda: TablePrint(0, EMPTY_DIGEST))

    def rows(self, table: str) -> int:
        return self.tables[table].rows

    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def only(self, *tables: str) -> Fingerprint:
        """The part of this fingerprint that belongs to ``tables`` (``"schema.table"`` names).

        Constraints and indexes go with the table they are on, sequences by serial's naming
        (``<table>_<column>_seq``); large objects belong to no table and are left out.
        """
        names = set(tables)
        bare = {t.split(".", 1)[1] for t in names if t.startswith("public.")}
        return Fingerprint(
            tables={k: v for k, v in self.tables.items() if k in names},
            sequences={
                k: v for k, v in self.sequences.items() if any(k.startswith(f"{t}_") for t in names)
            },
            constraints={
                k: v for k, v in self.constraints.items() if k.split(" ", 1)[0] in names | bare
            },
            indexes={
                k: v
                for k, v in self.indexes.items()
                if any(f" ON {t} " in v or f" ON ONLY {t} " in v for t in names)
            },
        )


def table_print(node: Node, table: str, dbname: str = "postgres") -> TablePrint:
    """Row count and an order-independent hash (of the sorted per-row md5s) of one table."""
    count, digest = node.query(
        f"SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), ''))"  # noqa: S608
        f" FROM (SELECT md5(t::text) AS h FROM {table} t) s",
        dbname=dbname,
    )[0]
    return TablePrint(int(count), str(digest))


def fingerprint(node: Node, dbname: str = "postgres") -> Fingerprint:
    fp = Fingerprint()
    for (table,) in node.query(TABLES_SQL, dbname=dbname):
        fp.tables[table] = table_print(node, table, dbname)
    fp.sequences = dict(node.query(SEQUENCES_SQL, dbname=dbname))
    fp.constraints = dict(node.query(CONSTRAINTS_SQL, dbname=dbname))
    fp.indexes = dict(node.query(INDEXES_SQL, dbname=dbname))
    fp.large_objects = large_objects_print(node, dbname)
    return fp


def large_objects_print(node: Node, dbname: str = "postgres") -> TablePrint:
    """How many large objects ``dbname`` holds and a hash of their oids and bytes.

    Reads ``pg_largeobject``, which needs a superuser (the harness always connects as one).
    """
    count, digest = node.query(LARGE_OBJECTS_SQL, dbname=dbname)[0]
    return TablePrint(int(count), str(digest))


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
    out += _large_object_differences(expected.large_objects, actual.large_objects)
    out += _sequence_differences(expected.sequences, actual.sequences, sequences)
    for label, want_map, got_map in (
        ("constraint", expected.constraints, actual.constraints),
        ("index", expected.indexes, actual.indexes),
    ):
        for name in sorted(set(want_map) | set(got_map)):
            if want_map.get(name) != got_map.get(name):
                out.append(
                    f"{label} {name}: {got_map.get(name)!r}, expected {want_map.get(name)!r}"
                )
    return out


def _large_object_differences(want: TablePrint, got: TablePrint) -> list[str]:
    if want.rows != got.rows:
        return [f"large objects: {got.rows}, expected {want.rows}"]
    if want.digest != got.digest:
        return [f"large objects: same count ({got.rows}) but different content"]
    return []


def _sequence_differences(want: dict[str, Any], got: dict[str, Any], mode: str) -> list[str]:
    out = []
    for name in sorted(set(want) | set(got)):
        a, b = want.get(name), got.get(name)
        if a == b:
            continue
        ahead_ok = mode == "at_least" and a is not None and b is not None and int(b) >= int(a)
        behind_ok = mode == "at_least" and a is None and b is not None
        if not (ahead_ok or behind_ok):
            out.append(
                f"sequence {name}: last_value {b!r}, expected {a!r}"
                + (" or more" if mode == "at_least" else "")
            )
    return out


def assert_same(
    expected: Fingerprint,
    actual: Fingerprint,
    what: str = "recovered data",
    sequences: str = "exact",
) -> None:
    diff = differences(expected, actual, sequences)
    if diff:
        raise AssertionError(f"{what} differs from what was expected:\n  " + "\n  ".join(diff))


@dataclass
class IndexCheck:
    """What :func:`check_indexes` did: indexes checked, corrupt ones, or why it could not."""

    checked: list[str] = field(default_factory=list)
    corrupt: dict[str, str] = field(default_factory=dict)
    skipped: str = ""


def check_indexes(node: Node, dbname: str = "postgres") -> IndexCheck:
    """amcheck's ``bt_index_check(index, heapallindexed => true)`` on every user btree index.

    Uses the ``amcheck`` extension when the database has it, else creates it for the check
    and drops it again. Where it cannot be had (a standby or a paused recovery is read-only;
    the installation may lack contrib) nothing is checked and ``skipped`` says why.
    """
    result = IndexCheck()
    created, why = _ensure_amcheck(node, dbname)
    if why:
        result.skipped = why
        return result
    try:
        for (index,) in node.query(BTREE_INDEXES_SQL, dbname=dbname):
            try:
                node.query("SELECT bt_index_check(%s::regclass, true)", [index], dbname=dbname)
            except psycopg.Error as exc:
                result.corrupt[index] = str(exc).strip().splitlines()[0]
            result.checked.append(index)
    finally:
        if created:
            node.query("DROP EXTENSION IF EXISTS amcheck", dbname=dbname)
    return result


def _ensure_amcheck(node: Node, dbname: str) -> tuple[bool, str]:
    """(created by us, why it is unavailable or "")."""
    if node.scalar("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'", dbname=dbname):
        return False, ""
    try:
        node.query("CREATE EXTENSION amcheck", dbname=dbname)
    except psycopg.Error as exc:
        return False, f"amcheck unavailable in {dbname}: {str(exc).strip().splitlines()[0]}"
    return True, ""


def assert_indexes_ok(node: Node, dbname: str = "postgres", required: bool = False) -> IndexCheck:
    """:func:`check_indexes`, failing on any corrupt index (and, if ``required``, on a skip)."""
    result = check_indexes(node, dbname)
    if result.corrupt:
        lines = [f"{name}: {error}" for name, error in sorted(result.corrupt.items())]
        raise AssertionError(
            f"amcheck found corrupt btree indexes in {dbname} on {node.name}:"
            "\n  " + "\n  ".join(lines)
        )
    if required and result.skipped:
        raise AssertionError(
            f"indexes of {dbname} on {node.name} were not checked: {result.skipped}"
        )
    return result
