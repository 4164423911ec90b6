"""amcheck on restored btree indexes: corruption a row count cannot see."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from pytest_pgdr.cluster.node import Node

# real btree indexes only: a partitioned table's index (relkind I) has no storage to check;
# its partitions' indexes are checked instead
BTREE_INDEXES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam
WHERE am.amname = 'btree' AND c.relkind = 'i' AND i.indisvalid AND i.indisready
  AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
ORDER BY 1
"""


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
