"""Fingerprints of a database: what a drill compares to prove recovered data is exact.

Each table's rows (partitions, not their partitioned parents, which hold no rows of their own;
materialized views too) are digested in one sequential scan with constant memory: each row's
text form gets two 64-bit hashes, and each is summed (modulo 2^64): 128 bits in all. A sum is
order-independent and, unlike xor, counts duplicate rows. Tables are digested in parallel on
``jobs`` connections. Sequences, constraints, indexes, columns (types, NOT NULL, defaults,
generated columns) and every other schema object (see :mod:`~pytest_pgdr.drill.catalog`)
are captured as PostgreSQL renders them, and large objects like tables.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pytest_pgdr.cluster.node import Node
from pytest_pgdr.drill import catalog

TABLES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname), c.relkind = 'm' AND NOT c.relispopulated
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
ORDER BY 1
"""
SEQUENCES_SQL = """
SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences ORDER BY 1
"""
CONSTRAINTS_SQL = """
SELECT format('%s %s', conrelid::regclass, conname), pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid <> 0 AND connamespace NOT IN
  (SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema'))
ORDER BY 1
"""
INDEXES_SQL = """
SELECT format('%I.%I', schemaname, indexname), indexdef FROM pg_indexes
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""
# The digest of a bag of texts ``x``: the count, then the sums of four signed 32-bit pieces of
# two 64-bit hashes (hashtextextended with seeds 0 and 1: the hash partitioning uses, the same
# on every major since 11). Summing int4 keeps bigint accumulators (sum(bigint) would go through
# numeric, twice as slow); Python folds the pieces into two 64-bit halves.
HASHES = "hashtextextended(x, 0) AS a, hashtextextended(x, 1) AS b"
DIGEST_COLUMNS = (
    "count(*), sum((a >> 32)::int4), sum(((a << 32) >> 32)::int4),"
    " sum((b >> 32)::int4), sum(((b << 32) >> 32)::int4)"
)
LARGE_OBJECTS_SQL = f"""
SELECT (SELECT count(*) FROM pg_largeobject_metadata), {DIGEST_COLUMNS.split(", ", 1)[1]}
FROM (SELECT {HASHES} FROM (
      SELECT 'lo ' || oid AS x FROM pg_largeobject_metadata
      UNION ALL
      SELECT loid || ':' || pageno || ':' || md5(data) FROM pg_largeobject) r) s
"""
EMPTY_DIGEST = "0" * 32  # what an empty table digests to
UNPOPULATED = "unpopulated materialized view"
MASK64 = (1 << 64) - 1


@dataclass
class TablePrint:
    rows: int
    digest: str


def _digest(row: tuple[Any, ...]) -> TablePrint:
    count, *pieces = (int(v or 0) for v in row)
    high = (pieces[0] << 32) + pieces[1]
    low = (pieces[2] << 32) + pieces[3]
    return TablePrint(count, f"{high & MASK64:016x}{low & MASK64:016x}")


@dataclass
class Fingerprint:
    """Per table row count and content digest; sequences; schema objects; large objects."""

    tables: dict[str, TablePrint] = field(default_factory=dict)
    sequences: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, str] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)
    #: ``schema.table.column`` -> type, NOT NULL, default / generation, identity, collation
    columns: dict[str, str] = field(default_factory=dict)
    #: views, functions, triggers, extensions, types, policies, grants, owners (see catalog)
    objects: dict[str, str] = field(default_factory=dict)
    #: count and digest of all large objects (oid, pages, bytes); the default is "none at all"
    large_objects: TablePrint = field(default_factory=lambda: TablePrint(0, EMPTY_DIGEST))
    #: the server's major version, when the fingerprint was taken from one
    major: int | None = None

    def rows(self, table: str) -> int:
        return self.tables[table].rows

    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def merged(self, part: Fingerprint) -> Fingerprint:
        """This fingerprint with everything in ``part`` (from :meth:`only`) laid over it: what
        the database holds once those tables are put back as they were in ``part``."""
        return Fingerprint(
            tables={**self.tables, **part.tables},
            sequences={**self.sequences, **part.sequences},
            constraints={**self.constraints, **part.constraints},
            indexes={**self.indexes, **part.indexes},
            columns={**self.columns, **part.columns},
            objects={**self.objects, **part.objects},
            large_objects=self.large_objects,
            major=self.major,
        )

    def only(self, *tables: str) -> Fingerprint:
        """The part of this fingerprint that belongs to ``tables`` (``"schema.table"`` names).

        Constraints, indexes, columns, triggers and policies go with their table, sequences by
        serial's naming (``<table>_<column>_seq``); large objects and database-wide objects
        (functions, types, extensions) belong to no table and are left out.
        """
        names = set(tables)
        bare = {t.split(".", 1)[1] for t in names if t.startswith("public.")}
        on_table = names | bare
        return Fingerprint(
            tables={k: v for k, v in self.tables.items() if k in names},
            sequences={
                k: v for k, v in self.sequences.items() if any(k.startswith(f"{t}_") for t in names)
            },
            constraints={
                k: v for k, v in self.constraints.items() if k.split(" ", 1)[0] in on_table
            },
            indexes={
                k: v
                for k, v in self.indexes.items()
                if any(f" ON {t} " in v or f" ON ONLY {t} " in v for t in names)
            },
            columns={k: v for k, v in self.columns.items() if k.rsplit(".", 1)[0] in names},
            objects={k: v for k, v in self.objects.items() if _belongs(k, names, on_table)},
            major=self.major,
        )


def _belongs(key: str, names: set[str], on_table: set[str]) -> bool:
    kind, _, rest = key.partition(" ")
    if kind == "table":  # tables, and sequences by serial's naming (<table>_<column>_seq)
        return rest in names or any(rest.startswith(f"{t}_") for t in names)
    return " on " in rest and rest.rsplit(" on ", 1)[1] in on_table


def table_print(node: Node, table: str, dbname: str = "postgres") -> TablePrint:
    """Row count and order-independent digest of one table (``schema.table``, quoted)."""
    return _digest(node.query(_table_sql(table), dbname=dbname)[0])


def _table_sql(table: str) -> str:
    # OFFSET 0 keeps the row's text form computed once for both hashes
    rows = f"SELECT t::text AS x FROM {table} t OFFSET 0"  # noqa: S608
    return f"SELECT {DIGEST_COLUMNS} FROM (SELECT {HASHES} FROM ({rows}) r) s"  # noqa: S608


def fingerprint(node: Node, dbname: str = "postgres", jobs: int = 2) -> Fingerprint:
    """The whole of ``dbname`` on ``node``: rows of every table and materialized view, and
    every schema object. ``jobs`` tables are digested at once, each on its own connection."""
    listed = node.query(TABLES_SQL, dbname=dbname)
    fp = Fingerprint(major=node.inst.major)
    fp.tables = {str(name): TablePrint(0, UNPOPULATED) for name, empty in listed if empty}
    fp.tables.update(_digest_tables(node, [str(n) for n, e in listed if not e], dbname, jobs))
    fp.sequences = dict(node.query(SEQUENCES_SQL, dbname=dbname))
    fp.constraints = {str(k): str(v) for k, v in node.query(CONSTRAINTS_SQL, dbname=dbname)}
    fp.indexes = {str(k): str(v) for k, v in node.query(INDEXES_SQL, dbname=dbname)}
    fp.columns = catalog.columns(node, dbname)
    fp.objects = catalog.objects(node, dbname)
    fp.large_objects = large_objects_print(node, dbname)
    return fp


def _digest_tables(node: Node, tables: list[str], dbname: str, jobs: int) -> dict[str, TablePrint]:
    if jobs <= 1 or len(tables) <= 1:
        return {t: table_print(node, t, dbname) for t in tables}
    with ThreadPoolExecutor(max_workers=min(jobs, len(tables))) as pool:
        return dict(zip(tables, pool.map(_on_own_connection(node, dbname), tables), strict=True))


def _on_own_connection(node: Node, dbname: str) -> Callable[[str], TablePrint]:
    def digest(table: str) -> TablePrint:
        with node.connect(dbname) as conn:
            row = conn.execute(_table_sql(table)).fetchone()
        assert row is not None
        return _digest(tuple(row))

    return digest


def large_objects_print(node: Node, dbname: str = "postgres") -> TablePrint:
    """How many large objects ``dbname`` holds and a digest of their oids and bytes.

    Reads ``pg_largeobject``, which needs a superuser (the harness always connects as one).
    """
    return _digest(node.query(LARGE_OBJECTS_SQL, dbname=dbname)[0])
