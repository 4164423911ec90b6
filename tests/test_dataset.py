"""Tests for pytest_pgdr.drill.dataset: sizes, determinism and the SQL it generates (no server)."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.drill.dataset import (
    DEPTS,
    POOL_SIZE,
    RUNBOOK_EMPLOYEES,
    Dataset,
    Statement,
    chunks,
    faker_pool,
)

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def params_of(statements: list[Statement]) -> list[dict[str, Any]]:
    return [stmt.params for stmt in statements]


def test_scale_one_is_tens_of_thousands_of_rows() -> None:
    assert Dataset(scale=1).counts == {
        "employees": 1000,
        "users": 5000,
        "orders": 20000,
        "documents": 1,
    }


def test_tiny_scale_keeps_the_runbook_rows_and_a_few_others() -> None:
    assert Dataset(scale=0.001).counts == {"employees": 3, "users": 5, "orders": 20, "documents": 1}
    assert Dataset(scale=1e-9).counts == {"employees": 3, "users": 2, "orders": 3, "documents": 1}


def test_rows_grow_linearly_with_scale() -> None:
    assert Dataset(scale=250).counts == {
        "employees": 250_000,
        "users": 1_250_000,
        "orders": 5_000_000,
        "documents": 1,
    }


@pytest.mark.parametrize("scale", [0, -1, math.nan, math.inf, "1"])
def test_bad_scale_is_refused(scale: Any) -> None:
    with pytest.raises(ConfigError, match="Bad dataset scale"):
        Dataset(scale=scale)


def test_tables_are_named_as_fingerprints_name_them() -> None:
    assert Dataset().tables == (
        "public.employees",
        "public.users",
        "public.orders",
        "public.documents",
    )


def test_same_seed_same_sql() -> None:
    assert Dataset(scale=0.5, seed=42).statements() == Dataset(scale=0.5, seed=42).statements()


def test_another_seed_changes_only_the_faker_values() -> None:
    one, two = Dataset(seed=1).statements(), Dataset(seed=2).statements()
    assert [s.sql for s in one] == [s.sql for s in two]
    assert params_of(one) != params_of(two)
    assert [p.get("n") for p in params_of(one)] == [p.get("n") for p in params_of(two)]


def test_scale_changes_only_the_row_numbers() -> None:
    small, big = Dataset(scale=1).statements(), Dataset(scale=3).statements()
    assert [s.sql for s in small] == [s.sql for s in big]
    assert small[2].params["n"] == 1000 - len(RUNBOOK_EMPLOYEES)
    assert big[2].params["n"] == 3000 - len(RUNBOOK_EMPLOYEES)
    assert (small[4].params["first_g"], small[4].params["last_g"]) == (1, 20000)
    assert (big[4].params["first_g"], big[4].params["last_g"]) == (1, 60000)


def test_every_placeholder_has_a_parameter() -> None:
    for stmt in Dataset(scale=0.01).statements():
        assert set(PLACEHOLDER.findall(stmt.sql)) == set(stmt.params), stmt.sql


def test_schema_has_the_objects_drills_rely_on() -> None:
    statements = Dataset().statements()
    schema, constraints = statements[0].sql, statements[-1].sql
    for needle in ("CHECK (salary > 0)", "id serial NOT NULL", "content oid NOT NULL"):
        assert needle in schema
    for needle in (
        "orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id)",
        "CREATE INDEX orders_user_id_idx",
        "employees_pkey PRIMARY KEY (id)",
        "users_email_key UNIQUE (email)",
    ):
        assert needle in constraints  # added after the rows, as pg_restore does
    assert "lo_from_bytea" in statements[-2].sql


def test_orders_load_in_chunks_that_cover_every_row() -> None:
    assert chunks(2_500_000) == [(1, 1_000_000), (1_000_001, 2_000_000), (2_000_001, 2_500_000)]
    assert chunks(3) == [(1, 3)]


def test_runbook_rows_come_first() -> None:
    runbook = Dataset().statements()[1].sql
    assert runbook.startswith("INSERT INTO employees")
    assert "('Asha Singh', 'IT', 1200000.00)" in runbook
    assert "('Pooja Das', 'HR', 600000.00)" in runbook


def test_faker_pool_is_fixed_by_seed_and_safe_for_emails() -> None:
    pool = faker_pool(7)
    assert pool == faker_pool(7)
    assert len(pool.first) == len(pool.last) == POOL_SIZE
    assert all(re.fullmatch(r"[A-Za-z-]+", name) for name in pool.first + pool.last)
    assert pool.domains and all("." in d for d in pool.domains)
    assert len(pool.document.encode()) > 4096  # spans several large-object pages (2 kB each)


def test_departments_add_up_to_all_employees() -> None:
    dataset = Dataset(scale=0.37)
    assert sum(dataset.employees_in(d) for d in DEPTS) == dataset.counts["employees"]


def test_department_count_follows_the_generated_pattern() -> None:
    assert Dataset(scale=0.001).employees_in("Finance") == 1  # Rohit Verma only
    # 997 generated rows, Finance where g % 5 == 1: g = 1, 6, ..., 996 -> 200, plus Rohit
    assert Dataset(scale=1).employees_in("Finance") == 201
    assert Dataset(scale=1).employees_in("Nobody") == 0


def test_write_more_refuses_nothing_to_write() -> None:
    with pytest.raises(ConfigError, match="n >= 1"):
        Dataset().write_more(None, 0)  # type: ignore[arg-type]


def test_statements_count_every_row_they_insert() -> None:
    for scale in (0.001, 1, 123.4):
        dataset = Dataset(scale=scale)
        assert sum(s.rows for s in dataset.statements()) == sum(dataset.counts.values())
