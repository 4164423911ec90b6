"""Comparing fingerprints: the differences between what was expected and what came back,
one readable line each, and the assertion drills make.

Fingerprints themselves are taken by :mod:`~pytest_pgdr.drill.fingerprint`; amcheck of
restored indexes is in :mod:`~pytest_pgdr.drill.amcheck`. Both are re-exported here.
"""

from __future__ import annotations

from typing import Any

from pytest_pgdr.drill.amcheck import IndexCheck, assert_indexes_ok, check_indexes
from pytest_pgdr.drill.catalog import VERSION_DEPENDENT
from pytest_pgdr.drill.fingerprint import (
    EMPTY_DIGEST,
    Fingerprint,
    TablePrint,
    fingerprint,
    large_objects_print,
    table_print,
)

__all__ = [
    "EMPTY_DIGEST",
    "Fingerprint",
    "IndexCheck",
    "TablePrint",
    "assert_indexes_ok",
    "assert_same",
    "check_indexes",
    "differences",
    "fingerprint",
    "large_objects_print",
    "table_print",
]


def differences(
    expected: Fingerprint,
    actual: Fingerprint,
    sequences: str = "exact",
    across_versions: bool | None = None,
) -> list[str]:
    """Human-readable differences, one line each; empty when the fingerprints are equal.

    ``sequences="at_least"`` accepts sequences that are ahead: after crash recovery or PITR a
    sequence may jump forward (PostgreSQL logs sequence values in advance), never back.

    ``across_versions`` compares fingerprints of two PostgreSQL majors (a dump from 15
    restored into 18): NOT NULL constraints are compared through the columns (18 lists them
    in ``pg_constraint``, older majors do not), and views, functions and triggers by presence,
    since each major renders their definitions its own way. Rows, sequences, columns,
    defaults, types, grants and every other object are compared exactly. By default it is on
    when the two fingerprints record different majors.
    """
    if across_versions is None:
        across_versions = None not in (expected.major, actual.major) and (
            expected.major != actual.major
        )
    out = _table_differences(expected.tables, actual.tables)
    out += _large_object_differences(expected.large_objects, actual.large_objects)
    out += _sequence_differences(expected.sequences, actual.sequences, sequences)
    constraints = [expected.constraints, actual.constraints]
    objects = [expected.objects, actual.objects]
    if across_versions:
        constraints = [_without_not_null(c) for c in constraints]
        objects = [_presence_of_version_dependent(o) for o in objects]
    for label, (want, got) in (
        ("constraint", constraints),
        ("index", (expected.indexes, actual.indexes)),
        ("column", (expected.columns, actual.columns)),
        ("", objects),
    ):
        out += _map_differences(label, want, got)
    return out


def _table_differences(want: dict[str, TablePrint], got: dict[str, TablePrint]) -> list[str]:
    out: list[str] = []
    for name in sorted(set(want) | set(got)):
        a, b = want.get(name), got.get(name)
        if a is None:
            out.append(f"table {name}: unexpected ({b.rows if b else 0} rows)")
        elif b is None:
            out.append(f"table {name}: missing (expected {a.rows} rows)")
        elif a.rows != b.rows:
            out.append(f"table {name}: {b.rows} rows, expected {a.rows}")
        elif a.digest != b.digest:
            out.append(f"table {name}: same {b.rows} rows count but different content")
    return out


def _map_differences(label: str, want: dict[str, str], got: dict[str, str]) -> list[str]:
    prefix = f"{label} " if label else ""
    out: list[str] = []
    for name in sorted(set(want) | set(got)):
        a, b = want.get(name), got.get(name)
        if a == b:
            continue
        if b is None:
            out.append(f"{prefix}{name}: missing (expected {a!r})")
        elif a is None:
            out.append(f"{prefix}{name}: unexpected ({b!r})")
        else:
            out.append(f"{prefix}{name}: {b!r}, expected {a!r}")
    return out


def _without_not_null(constraints: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in constraints.items() if not v.startswith("NOT NULL ")}


def _presence_of_version_dependent(objects: dict[str, str]) -> dict[str, str]:
    return {k: ("present" if k.startswith(VERSION_DEPENDENT) else v) for k, v in objects.items()}


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
    across_versions: bool | None = None,
) -> None:
    """Fail, listing every difference, unless ``actual`` is exactly ``expected``."""
    diff = differences(expected, actual, sequences, across_versions)
    if diff:
        raise AssertionError(f"{what} differs from what was expected:\n  " + "\n  ".join(diff))
