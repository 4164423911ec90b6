"""Runbook: logical backup and restore (Lab 14 steps 1-2; guide "Logical Backups (pg_dump)").

The team's database (``pgdr_data``: your schema files or seed hook, else the built-in dataset)
is dumped in each ``pg_dump`` format and restored the way each format is meant to be:

* custom  -> ``pg_restore --clean --if-exists`` over the damaged database itself;
* directory (``-j 2``) -> ``pg_restore -j 2`` into a new database;
* plain   -> ``psql --single-transaction -v ON_ERROR_STOP=1`` into a new database;
* tar     -> the database is dropped, ``pg_restore --create`` brings it back.

``pg_dumpall --globals-only`` (checked against ``--roles-only``) is restored into a fresh
cluster before the team's database, with an owner role and a grant on the victim table.

Table-level restores (``-l`` / ``-L``, ``-t``, ``-n``) and schema-only followed by data-only
(the foreign-key and sequence traps) show how pg_restore behaves on a schema whose parts are
known: they always run on the built-in dataset (``shop``: employees, users, orders with a
foreign key, a large object), whatever the team's database is. Every restore is proven by
fingerprints (rows, sequences, columns, constraints, indexes, schema objects, large objects)
and amcheck, never by exit codes alone.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pytest_pgdr import (
    Fingerprint,
    Node,
    Stopwatch,
    ToolError,
    Topology,
    assert_same,
    differences,
    fingerprint,
)
from pytest_pgdr.basics.errors import register_secret
from pytest_pgdr.basics.paths import write_private
from pytest_pgdr.cluster.credentials import Secret
from pytest_pgdr.drill.dataset import Dataset, create_database
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.drill.teamdata import BuiltinData, TeamData, accidental_delete
from pytest_pgdr.drill.verify import assert_indexes_ok

pytestmark = pytest.mark.pgdr

DB = "shop"
ROLE_COLUMNS = (
    "r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,"
    " r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit,"
    " r.rolvaliduntil, r.rolconfig, a.rolpassword"
)


@pytest.fixture
def dataset(pgdr_dataset: Dataset) -> Dataset:
    """The built-in data the table-level and trap drills need (``pgdr_dataset``)."""
    return pgdr_dataset


@pytest.fixture
def shop(dataset: Dataset) -> TeamData:
    """The built-in dataset in ``shop``, for the drills that need its known parts."""
    return BuiltinData(dataset, DB)


# helpers --------------------------------------------------------------------------------
def dumps_dir(pgdr: Topology) -> Path:
    """A directory the server user can write dumps into."""
    return pgdr.host.make_dir(pgdr.root / "dumps")


def loaded_primary(
    pgdr: Topology, data: TeamData, name: str = "primary"
) -> tuple[Node, Fingerprint]:
    """A primary holding ``data``, and the fingerprint every restore must match."""
    node = pgdr.primary(name=name, archive=False)
    data.load(node)
    return node, fingerprint(node, data.dbname)


def verify_restore(
    node: Node, dbname: str, expected: Fingerprint, rto: Stopwatch, what: str
) -> Fingerprint:
    """Fingerprint and amcheck the restored database; the RTO clock stops here."""
    actual = fingerprint(node, dbname)
    check = assert_indexes_ok(node, dbname)
    rto.stop("verify")
    assert_same(expected, actual, what)
    if not check.skipped:
        btree = [
            k for k, v in expected.indexes.items() if " USING btree " in v and " ON ONLY " not in v
        ]
        assert check.checked == sorted(btree), "amcheck skipped some btree indexes"
    return actual


def drop_database(node: Node, dbname: str) -> None:
    node.close_connections()
    node.query(f"DROP DATABASE {sql.Identifier(dbname).as_string(None)} WITH (FORCE)")


# the four formats -----------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    dump_args: tuple[str, ...]
    restore: Callable[[Node, TeamData, Path], str]  # the database that holds the restore


# ``--clean`` drops each partition's copy of its parent's key before the parent's: PostgreSQL
# refuses (the parent's own drop removes it a moment later) and pg_restore exits 1. Harmless,
# and the only errors allowed: the fingerprint then proves the restore complete.
HARMLESS_CLEAN_ERROR = re.compile(r'ERROR:  cannot drop inherited constraint "[^"]+" of relation')


def restore_clean(node: Node, data: TeamData, dump: Path) -> str:
    """The damaged database is repaired in place: drop what the dump has, recreate it."""
    accidental_delete(node, data.dbname, data.victim(node))
    proc = node.run_tool(
        "pg_restore", "--clean", "--if-exists", "-d", data.dbname, dump, check=False
    )
    errors = [line for line in proc.stderr.splitlines() if "ERROR:" in line]
    unexpected = [line for line in errors if not HARMLESS_CLEAN_ERROR.search(line)]
    assert proc.returncode == (1 if errors else 0) and not unexpected, proc.stderr
    return data.dbname


def restore_parallel(node: Node, data: TeamData, dump: Path) -> str:
    target = f"{data.dbname}_restored"
    create_database(node, target)
    node.run_tool("pg_restore", "-j", "2", "-d", target, dump)
    return target


def restore_plain(node: Node, data: TeamData, dump: Path) -> str:
    target = f"{data.dbname}_restored"
    create_database(node, target)
    node.run_tool(
        "psql",
        "-X",
        "-q",
        "--single-transaction",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        target,
        "-f",
        dump,
    )
    return target


def restore_create(node: Node, data: TeamData, dump: Path) -> str:
    drop_database(node, data.dbname)
    node.run_tool("pg_restore", "--create", "-d", "postgres", dump)
    return data.dbname


CASES = {
    "custom-clean": Case(("-Fc",), restore_clean),
    "directory-j2": Case(("-Fd", "-j", "2"), restore_parallel),
    "plain-psql": Case(("-Fp",), restore_plain),
    "tar-create": Case(("-Ft",), restore_create),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_dump_and_restore_round_trip(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement, case: str
) -> None:
    node, expected = loaded_primary(pgdr, pgdr_data)
    dump = dumps_dir(pgdr) / f"dump.{case}"
    node.run_tool("pg_dump", *CASES[case].dump_args, "-f", dump, "-d", pgdr_data.dbname)

    rto = pgdr_measure.declare_disaster()
    dbname = CASES[case].restore(node, pgdr_data, dump)
    rto.lap("restore")
    verify_restore(node, dbname, expected, rto, f"{case} restore of {pgdr_data.dbname}")


# table-level restores -------------------------------------------------------------------
def employees_list(listing: str) -> str:
    """The ``pg_restore -l`` lines of the employees table and everything that hangs on it."""
    keep = [
        line
        for line in listing.splitlines()
        if not line.startswith(";") and re.search(r"\bpublic employees(_id_seq)?\b", line)
    ]
    assert len(keep) == 7, "expected TABLE, SEQUENCE, OWNED BY, DEFAULT, DATA, SET, PK:\n" + (
        "\n".join(keep)
    )
    return "\n".join(keep) + "\n"


def test_table_level_restores(
    pgdr: Topology, dataset: Dataset, shop: TeamData, pgdr_measure: Measurement
) -> None:
    """``-l`` then ``-L`` brings a dropped table back whole; ``-t`` and ``-n`` leave out parts.

    ``pg_restore -t`` restores the table and its data but no key, index or sequence (as
    documented: pg_dump's ``-t`` takes subsidiary objects along, pg_restore's does not);
    ``pg_restore -n`` leaves out large objects, so ``documents.content`` dangles.
    """
    node, expected = loaded_primary(pgdr, shop)
    dump = dumps_dir(pgdr) / "shop.dump"
    node.run_tool("pg_dump", "-Fc", "-f", dump, "-d", DB)
    node.query("DROP TABLE employees", dbname=DB)

    rto = pgdr_measure.declare_disaster()
    listing = node.run_tool("pg_restore", "-l", dump).stdout
    pgdr.host.write_file(dump.with_suffix(".list"), employees_list(listing))
    node.run_tool("pg_restore", "-L", dump.with_suffix(".list"), "-d", DB, dump)
    rto.lap("restore table from list")
    verify_restore(node, DB, expected, rto, "employees restored with -L")

    create_database(node, "only_t")
    empty_database = fingerprint(node, "only_t").objects  # the public schema, plpgsql
    node.run_tool("pg_restore", "-t", "employees", "-d", "only_t", dump)
    employees = expected.only("public.employees")
    in_create_table = {
        k: v for k, v in employees.constraints.items() if v.startswith(("NOT NULL ", "CHECK "))
    }
    assert len(in_create_table) < len(employees.constraints)
    bare = Fingerprint(
        tables=employees.tables,
        constraints=in_create_table,
        columns={k: v.split(" default ", 1)[0] for k, v in employees.columns.items()},
        objects={
            **empty_database,
            "table public.employees": employees.objects["table public.employees"],
        },
    )
    assert_same(bare, fingerprint(node, "only_t"), "pg_restore -t employees")

    create_database(node, "only_n")
    node.run_tool("pg_restore", "-n", "public", "-d", "only_n", dump)
    assert differences(expected, fingerprint(node, "only_n")) == [
        f"large objects: 0, expected {dataset.counts['documents']}"
    ]


# schema-only, then data-only ------------------------------------------------------------
def test_schema_only_then_data_only_with_sequences(
    pgdr: Topology, dataset: Dataset, shop: TeamData, pgdr_measure: Measurement
) -> None:
    """Data-only needs ``--disable-triggers`` (foreign keys) and brings sequences back;
    table data alone (``-t``) does not: the next insert collides with row 1, the classic trap.
    """
    node, expected = loaded_primary(pgdr, shop)
    dump = dumps_dir(pgdr) / "shop.dump"
    node.run_tool("pg_dump", "-Fc", "-f", dump, "-d", DB)

    rto = pgdr_measure.declare_disaster()
    for dbname in ("shop_restored", "trap"):
        create_database(node, dbname)
        node.run_tool("pg_restore", "--schema-only", "-d", dbname, dump)
    rto.lap("restore schema")
    with pytest.raises(ToolError, match='violates foreign key constraint "orders_user_id_fkey"'):
        node.run_tool(
            "pg_restore", "--data-only", "--single-transaction", "-d", "shop_restored", dump
        )
    node.run_tool(
        "pg_restore",
        "--data-only",
        "--disable-triggers",
        "--single-transaction",
        "-d",
        "shop_restored",
        dump,
    )
    rto.lap("restore data")
    verify_restore(node, "shop_restored", expected, rto, "schema-only + data-only restore")
    new_id = node.scalar(
        "INSERT INTO orders (user_id, amount, status, placed_at)"
        " VALUES (1, 1, 'new', now()) RETURNING id",
        dbname="shop_restored",
    )
    assert new_id == dataset.counts["orders"] + 1

    node.run_tool("pg_restore", "--data-only", "-t", "employees", "-d", "trap", dump)
    trapped = fingerprint(node, "trap")
    assert trapped.tables["public.employees"] == expected.tables["public.employees"]
    assert trapped.sequences["public.employees_id_seq"] is None, "the trap did not spring"
    with pytest.raises(psycopg.errors.UniqueViolation, match="employees_pkey"):
        node.query(
            "INSERT INTO employees (full_name, dept, salary) VALUES ('New', 'IT', 1)", dbname="trap"
        )


# roles and globals into a fresh cluster -------------------------------------------------
def make_roles(node: Node, dbname: str, victim: str) -> Path:
    """An owner role with a password and settings, a group role, ownership and grants.

    The password goes to the server as a SCRAM verifier and to clients in a 0600 pgpass file
    (returned), so no frame of a failing call (pytest -l) holds it in clear."""
    password = Secret(secrets.token_urlsafe(12))
    register_secret(password)
    # for this process's own connections: on this machine, wherever the servers run
    passfile = node.host.run_dir.path / f".{node.name}-{id(node)}-app_owner.pgpass"
    write_private(passfile, Secret(f"*:*:*:app_owner:{password}\n"))
    with node.connect() as conn:
        verifier = conn.pgconn.encrypt_password(
            password.encode(), b"app_owner", b"scram-sha-256"
        ).decode()
    database = sql.Identifier(dbname).as_string(None)
    node.psql(
        f"CREATE ROLE app_owner LOGIN PASSWORD '{verifier}' CONNECTION LIMIT 7"
        " VALID UNTIL '2099-01-01 00:00:00+00';"
        " CREATE ROLE readers NOLOGIN; GRANT readers TO app_owner;"
        " ALTER ROLE app_owner SET work_mem = '8MB';"
        f" ALTER DATABASE {database} OWNER TO app_owner;"
    )
    node.psql(
        f"ALTER TABLE {victim} OWNER TO app_owner; GRANT SELECT ON {victim} TO readers;", dbname
    )
    return passfile


def roles_of(node: Node) -> list[tuple[object, ...]]:
    """Attributes, password verifier and settings of the two roles."""
    return node.query(
        f"SELECT {ROLE_COLUMNS} FROM pg_roles r JOIN pg_authid a USING (oid)"
        " WHERE r.rolname IN ('app_owner', 'readers') ORDER BY 1"
    )


def grants_of(node: Node, dbname: str, victim: str) -> list[tuple[object, ...]]:
    """Role membership, database owner, table owner and table ACL."""
    return [
        *node.query(
            "SELECT r.rolname, m.rolname FROM pg_auth_members a"
            " JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member"
            " WHERE m.rolname = 'app_owner' ORDER BY 1"
        ),
        *node.query(
            "SELECT datname, datdba::regrole::text FROM pg_database WHERE datname = %s", [dbname]
        ),
        *node.query(
            "SELECT relname, relowner::regrole::text, relacl::text FROM pg_class"
            " WHERE oid = %s::regclass",
            [victim],
            dbname=dbname,
        ),
    ]


def role_statements(script: str) -> list[str]:
    """The role lines of a pg_dumpall script (without its random ``\\restrict`` key)."""
    return [line for line in script.splitlines() if re.match(r"(CREATE|ALTER) ROLE |GRANT ", line)]


def test_globals_then_database_into_fresh_cluster(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    """``pg_dumpall --globals-only`` first, then the database: owners, grants, logins survive."""
    db = pgdr_data.dbname
    node, _ = loaded_primary(pgdr, pgdr_data)
    victim = pgdr_data.victim(node)
    passfile = make_roles(node, db, victim)
    expected = fingerprint(node, db)  # owners and grants included
    dump = dumps_dir(pgdr) / "team.dump"
    node.run_tool("pg_dump", "-Fc", "-f", dump, "-d", db)
    globals_sql = node.run_tool("pg_dumpall", "--globals-only").stdout
    roles_sql = node.run_tool("pg_dumpall", "--roles-only").stdout
    assert role_statements(roles_sql) == role_statements(globals_sql) != []

    rto = pgdr_measure.declare_disaster()
    fresh = pgdr.primary(name="fresh", archive=False)
    rto.lap("new cluster")
    present = [r for (r,) in fresh.query("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_'")]
    proc = fresh.run_tool("psql", "-X", "-q", "-f", "-", input=globals_sql)
    rto.lap("restore globals")
    fresh.run_tool("pg_restore", "--create", "-d", "postgres", dump)
    rto.lap("restore database")
    verify_restore(fresh, db, expected, rto, f"{db} restored after pg_dumpall --globals-only")

    assert sorted(proc.stderr.splitlines()) == sorted(
        f'psql:<stdin>:{n}: ERROR:  role "{r}" already exists'
        for r, n in _create_lines(globals_sql, present)
    ), "only the new cluster's own roles clash"
    assert roles_of(fresh) == roles_of(node)
    assert grants_of(fresh, db, victim) == grants_of(node, db, victim)
    with psycopg.connect(fresh.conninfo(db, "app_owner"), passfile=str(passfile)) as conn:
        count = conn.execute(f"SELECT count(*) FROM {victim}").fetchone()
    assert count == (expected.rows(victim),)


def _create_lines(script: str, roles: list[str]) -> list[tuple[str, int]]:
    """(role, line number) of each ``CREATE ROLE`` in ``script`` for a role in ``roles``."""
    out = []
    for number, line in enumerate(script.splitlines(), start=1):
        match = re.fullmatch(r'CREATE ROLE "?([^";]+)"?;', line)
        if match and match.group(1) in roles:
            out.append((match.group(1), number))
    return out
