"""Tests for drill.verify: how fingerprint differences read, subsets, amcheck (no server)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from pytest_pgdr.drill.verify import (
    EMPTY_DIGEST,
    Fingerprint,
    TablePrint,
    assert_indexes_ok,
    assert_same,
    check_indexes,
    differences,
)


def shop(**changes: Any) -> Fingerprint:
    """A small fingerprint, with any field replaced."""
    fields: dict[str, Any] = {
        "tables": {
            "public.employees": TablePrint(3, "a" * 32),
            "public.orders": TablePrint(20, "b" * 32),
        },
        "sequences": {"public.employees_id_seq": 3, "public.orders_id_seq": 20},
        "constraints": {
            "employees employees_pkey": "PRIMARY KEY (id)",
            "orders orders_pkey": "PRIMARY KEY (id)",
            "orders orders_user_id_fkey": "FOREIGN KEY (user_id) REFERENCES users(id)",
        },
        "indexes": {
            "public.employees_pkey": "CREATE UNIQUE INDEX employees_pkey ON public.employees"
            " USING btree (id)",
            "public.orders_pkey": "CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree"
            " (id)",
        },
        "large_objects": TablePrint(1, "c" * 32),
    }
    fields.update(changes)
    return Fingerprint(**fields)


def test_equal_fingerprints_have_no_differences() -> None:
    assert differences(shop(), shop()) == []
    assert_same(shop(), shop())


def test_table_differences_read_as_sentences() -> None:
    expected = shop()
    actual = shop(
        tables={
            "public.employees": TablePrint(2, "a" * 32),
            "public.extra": TablePrint(4, "d" * 32),
        }
    )
    assert differences(expected, actual) == [
        "table public.employees: 2 rows, expected 3",
        "table public.extra: unexpected (4 rows)",
        "table public.orders: missing (expected 20 rows)",
    ]


def test_same_count_different_content() -> None:
    actual = shop(
        tables={
            "public.employees": TablePrint(3, "e" * 32),
            "public.orders": TablePrint(20, "b" * 32),
        }
    )
    assert differences(shop(), actual) == [
        "table public.employees: same 3 rows count but different content"
    ]


def test_large_object_differences() -> None:
    assert differences(shop(), shop(large_objects=TablePrint(0, EMPTY_DIGEST))) == [
        "large objects: 0, expected 1"
    ]
    assert differences(shop(), shop(large_objects=TablePrint(1, "f" * 32))) == [
        "large objects: same count (1) but different content"
    ]


def test_default_means_no_large_objects() -> None:
    assert Fingerprint().large_objects == TablePrint(0, EMPTY_DIGEST)
    assert differences(Fingerprint(), Fingerprint(large_objects=TablePrint(2, "x"))) == [
        "large objects: 2, expected 0"
    ]


def test_sequences_exact_and_at_least() -> None:
    ahead = shop(sequences={"public.employees_id_seq": 35, "public.orders_id_seq": 20})
    behind = shop(sequences={"public.employees_id_seq": 2, "public.orders_id_seq": None})
    assert differences(shop(), ahead) == [
        "sequence public.employees_id_seq: last_value 35, expected 3"
    ]
    assert differences(shop(), ahead, sequences="at_least") == []
    assert differences(shop(), behind, sequences="at_least") == [
        "sequence public.employees_id_seq: last_value 2, expected 3 or more",
        "sequence public.orders_id_seq: last_value None, expected 20 or more",
    ]


def test_constraint_and_index_differences() -> None:
    constraints = dict(shop().constraints)
    del constraints["orders orders_user_id_fkey"]
    indexes = {**shop().indexes, "public.orders_pkey": "CREATE INDEX orders_pkey ON x"}
    assert differences(shop(), shop(constraints=constraints, indexes=indexes)) == [
        "constraint orders orders_user_id_fkey: missing (expected"
        " 'FOREIGN KEY (user_id) REFERENCES users(id)')",
        "index public.orders_pkey: 'CREATE INDEX orders_pkey ON x', expected"
        " 'CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)'",
    ]


def test_assert_same_names_what_differs() -> None:
    with pytest.raises(AssertionError) as info:
        assert_same(shop(), shop(tables={}), "restored shop")
    assert str(info.value).splitlines() == [
        "restored shop differs from what was expected:",
        "  table public.employees: missing (expected 3 rows)",
        "  table public.orders: missing (expected 20 rows)",
    ]


def test_only_keeps_one_table_and_what_hangs_on_it() -> None:
    part = shop().only("public.orders")
    assert part == Fingerprint(
        tables={"public.orders": TablePrint(20, "b" * 32)},
        sequences={"public.orders_id_seq": 20},
        constraints={
            "orders orders_pkey": "PRIMARY KEY (id)",
            "orders orders_user_id_fkey": "FOREIGN KEY (user_id) REFERENCES users(id)",
        },
        indexes={"public.orders_pkey": shop().indexes["public.orders_pkey"]},
    )
    assert shop().only("public.nothing") == Fingerprint()


def test_rows_and_total_rows() -> None:
    assert shop().rows("public.orders") == 20
    assert shop().total_rows() == 23


# amcheck, against a stand-in node ---------------------------------------------------------
class FakeNode:
    """Answers the few statements check_indexes sends; records them."""

    name = "fake"

    def __init__(
        self,
        has_extension: bool = True,
        create_error: Exception | None = None,
        corrupt: Sequence[str] = (),
    ) -> None:
        self.has_extension = has_extension
        self.create_error = create_error
        self.corrupt = set(corrupt)
        self.sent: list[str] = []

    def scalar(self, sql: str, params: Any = None, dbname: str = "postgres") -> Any:
        self.sent.append(sql)
        return 1 if self.has_extension else None

    def query(self, sql: str, params: Any = None, dbname: str = "postgres") -> list[Any]:
        self.sent.append(sql)
        if sql.startswith("CREATE EXTENSION"):
            if self.create_error:
                raise self.create_error
            return []
        if "bt_index_check" in sql:
            if params[0] in self.corrupt:
                raise psycopg.errors.IndexCorrupted(f'index "{params[0]}" lacks a heap tuple')
            return [("",)]
        if "pg_index" in sql:
            return [("public.a_idx",), ("public.b_idx",)]
        return []


def test_check_indexes_uses_an_existing_extension() -> None:
    node = FakeNode()
    result = check_indexes(node)  # type: ignore[arg-type]
    assert (result.checked, result.corrupt, result.skipped) == (
        ["public.a_idx", "public.b_idx"],
        {},
        "",
    )
    assert not any(s.startswith(("CREATE EXTENSION", "DROP EXTENSION")) for s in node.sent)


def test_check_indexes_creates_and_drops_the_extension() -> None:
    node = FakeNode(has_extension=False)
    assert check_indexes(node).checked == ["public.a_idx", "public.b_idx"]  # type: ignore[arg-type]
    assert "CREATE EXTENSION amcheck" in node.sent
    assert node.sent[-1] == "DROP EXTENSION IF EXISTS amcheck"


def test_check_indexes_skips_on_a_read_only_standby() -> None:
    error = psycopg.errors.ReadOnlySqlTransaction(
        "cannot execute CREATE EXTENSION in a read-only transaction"
    )
    node = FakeNode(has_extension=False, create_error=error)
    result = check_indexes(node, "shop")  # type: ignore[arg-type]
    assert result.checked == []
    assert result.skipped == (
        "amcheck unavailable in shop: cannot execute CREATE EXTENSION in a read-only transaction"
    )
    assert_indexes_ok(node, "shop")  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="indexes of shop on fake were not checked"):
        assert_indexes_ok(node, "shop", required=True)  # type: ignore[arg-type]


def test_corrupt_index_fails_with_its_name_and_error() -> None:
    node = FakeNode(corrupt=["public.b_idx"])
    with pytest.raises(AssertionError) as info:
        assert_indexes_ok(node, "shop")  # type: ignore[arg-type]
    assert str(info.value).splitlines() == [
        "amcheck found corrupt btree indexes in shop on fake:",
        '  public.b_idx: index "public.b_idx" lacks a heap tuple',
    ]


def test_columns_and_objects_are_compared() -> None:
    expected = shop(
        columns={"public.orders.status": "text not null default 'new'::text"},
        objects={"trigger audit on orders": "CREATE TRIGGER audit ... enabled=O"},
    )
    actual = shop(columns={"public.orders.status": "text not null"}, objects={})
    assert differences(expected, actual) == [
        "column public.orders.status: 'text not null', expected \"text not null default"
        " 'new'::text\"",
        "trigger audit on orders: missing (expected 'CREATE TRIGGER audit ... enabled=O')",
    ]


def test_across_versions_compares_not_null_through_columns_and_definitions_by_presence() -> None:
    old = shop(
        major=15,
        columns={"public.orders.status": "text not null"},
        objects={"view public.v": " SELECT 1;", "extension pgcrypto": "1.3 in public"},
    )
    new = shop(
        major=18,
        constraints={**shop().constraints, "orders orders_status_not_null": "NOT NULL status"},
        columns={"public.orders.status": "text not null"},
        objects={"view public.v": "SELECT 1;", "extension pgcrypto": "1.3 in public"},
    )
    assert differences(old, new) == []  # different majors: across_versions by default
    assert len(differences(old, new, across_versions=False)) == 2
    new.objects["extension pgcrypto"] = "1.4 in public"
    assert differences(old, new) == [
        "extension pgcrypto: '1.4 in public', expected '1.3 in public'"
    ]


def test_merged_lays_a_part_over_the_whole() -> None:
    now = shop(columns={"public.orders.id": "bigint"}, objects={"table public.orders": "a"})
    then = shop(
        tables={"public.orders": TablePrint(99, "f" * 32)},
        columns={"public.orders.id": "integer"},
        objects={"table public.orders": "b", "trigger t on orders": "x"},
    )
    merged = now.merged(then.only("public.orders"))
    assert merged.tables["public.orders"].rows == 99
    assert merged.tables["public.employees"].rows == 3
    assert merged.columns == {"public.orders.id": "integer"}
    assert merged.objects == {"table public.orders": "b", "trigger t on orders": "x"}
