"""Checks a team declares for its restored backups, in a small TOML file (no Python):

.. code-block:: toml

    database = "app"               # where the checks run (default: the restored database)
    max_backup_age = "26h"         # the backup itself, from its own stop time
    tables = ["public.orders", "public.customers"]   # must exist

    [min_rows]                     # at least this many rows
    "public.orders" = 1000

    [max_age]                      # the newest row is no older than this (data age vs RPO)
    "public.orders.placed_at" = "26h"

    [assert]                       # each query returns true
    "no order without a customer" = "SELECT NOT EXISTS (...)"

    [source.nightly]               # only for the source named nightly: adds or overrides
    database = "shop"

Plain Python: :func:`load_checks` reads the file, :func:`run_checks` runs them on a node.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_pgdr.basics.errors import ConfigError, PgdrError
from pytest_pgdr.basics.units import format_duration, parse_duration

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node

KEYS = ("database", "max_backup_age", "tables", "min_rows", "max_age", "assert", "source")


@dataclass(frozen=True)
class Checks:
    database: str = ""
    max_backup_age: float | None = None
    tables: tuple[str, ...] = ()
    min_rows: Mapping[str, int] = field(default_factory=dict)
    max_age: Mapping[str, float] = field(default_factory=dict)  # table.column -> seconds
    asserts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    value: float | None = None  # rows, or seconds of data age


def load_checks(path: str | Path | None, source: str) -> Checks:
    """The checks for ``source`` from the file (its top level, then ``[source.NAME]``)."""
    if path is None:
        return Checks()
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"The source checks file {path} cannot be read",
            str(exc),
            "Fix the file named by --pgdr-source-checks (TOML; see docs/nightly.md)",
        ) from None
    merged = {k: v for k, v in data.items() if k != "source"}
    for key, value in (data.get("source", {}).get(source) or {}).items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return _build(str(path), merged)


def _build(where: str, data: Mapping[str, Any]) -> Checks:
    bad = sorted(set(data) - set(KEYS))
    if bad:
        raise ConfigError(
            f"Unknown key(s) {', '.join(bad)} in the source checks file {where}",
            f"valid keys: {', '.join(KEYS)}",
        )
    try:
        age = data.get("max_backup_age")
        return Checks(
            database=str(data.get("database", "")),
            max_backup_age=parse_duration(age, "max_backup_age") if age is not None else None,
            tables=tuple(str(t) for t in data.get("tables", [])),
            min_rows={str(k): int(v) for k, v in data.get("min_rows", {}).items()},
            max_age={
                str(k): parse_duration(v, f"max_age {k}")
                for k, v in data.get("max_age", {}).items()
            },
            asserts={str(k): str(v) for k, v in data.get("assert", {}).items()},
        )
    except (PgdrError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"Bad value in the source checks file {where}", str(exc)) from None


def run_checks(node: Node, checks: Checks, dbname: str) -> list[CheckResult]:
    """Every declared check on ``node`` (in ``checks.database`` or ``dbname``)."""
    db = checks.database or dbname
    out = [_exists(node, db, table) for table in checks.tables]
    out += [_min_rows(node, db, table, least) for table, least in checks.min_rows.items()]
    out += [_fresh(node, db, column, limit) for column, limit in checks.max_age.items()]
    out += [_assert(node, db, name, query) for name, query in checks.asserts.items()]
    return out


def backup_age(checks: Checks, stopped: str, now: dt.datetime | None = None) -> CheckResult | None:
    """The backup's own age against ``max_backup_age`` (None when no limit or no time)."""
    when = _parse_time(stopped)
    if checks.max_backup_age is None or when is None:
        return None
    age = ((now or dt.datetime.now(dt.UTC)) - when).total_seconds()
    ok = age <= checks.max_backup_age
    detail = f"the backup finished {_age(age)} ago" + (
        ""
        if ok
        else f", over the limit of {_age(checks.max_backup_age)}: it is stale"
        " (has the backup job stopped?)"
    )
    return CheckResult("backup age", ok, detail, age)


def _age(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    return format_duration(seconds)


def _parse_time(text: str) -> dt.datetime | None:
    text = text.strip().replace(" UTC", "+00:00").replace(" GMT", "+00:00")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _query(node: Node, db: str, query: str, params: list[Any] | None = None) -> tuple[Any, str]:
    try:
        return node.scalar(query, params, dbname=db), ""
    except psycopg.Error as exc:
        return None, str(exc).strip().splitlines()[0]


def _exists(node: Node, db: str, table: str) -> CheckResult:
    found, error = _query(node, db, "SELECT to_regclass(%s) IS NOT NULL", [table])
    detail = "exists" if found else (error or f"no table {table} in database {db}")
    return CheckResult(f"table {table}", bool(found), detail)


def _min_rows(node: Node, db: str, table: str, least: int) -> CheckResult:
    rows, error = _query(node, db, f"SELECT count(*) FROM {table}")
    ok = rows is not None and int(rows) >= least
    detail = error or f"{rows:,} rows (at least {least:,} expected)"
    return CheckResult(f"rows in {table}", ok, detail, None if rows is None else float(rows))


def _fresh(node: Node, db: str, column: str, limit: float) -> CheckResult:
    table, _, col = column.rpartition(".")
    age, error = _query(
        node, db, f"SELECT extract(epoch FROM now() - max({col}))::float8 FROM {table}"
    )
    if age is None:
        why = error or f"{table} has no rows, so it has no newest row"
        return CheckResult(f"data age of {column}", False, why)
    ok = float(age) <= limit
    detail = f"newest row is {_age(float(age))} old" + (
        f" (limit {_age(limit)})"
        if ok
        else f", over the limit of {_age(limit)}: the backup is stale, it misses"
        " everything written since"
    )
    return CheckResult(f"data age of {column}", ok, detail, float(age))


def _assert(node: Node, db: str, name: str, query: str) -> CheckResult:
    value, error = _query(node, db, query)
    ok = value is True
    detail = error or ("true" if ok else f"returned {value!r}, not true")
    return CheckResult(f"assert: {name}", ok, detail)
