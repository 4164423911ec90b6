"""The database a drill protects: the team's own (schema files, dumps, migrations, or a seed
hook in any conftest) or pytest-pgdr's built-in dataset.

Every member of the family answers the same three questions, so a drill never asks which one
it has: :meth:`~TeamData.load` it into a node, which table an accident hits
(:meth:`~TeamData.victim`), and where the drill's own marker rows go (:data:`DRILL_SCHEMA`,
apart from the team's tables). :func:`choose_team_data` picks the member, once.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from psycopg import sql

from pytest_pgdr.basics.errors import ConfigError, PgdrError, ToolError
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.drill.dataset import Dataset, create_database

DRILL_SCHEMA = "pgdr_drill"  # the drills' own tables (writes ledger, markers)
DUMP_SUFFIXES = (".dump", ".backup", ".pgdump", ".tar", ".custom")
MISSING_EXTENSION = re.compile(
    r'extension "([^"]+)" is not available|could not open extension control file'
    r' "[^"]*/([^"/]+)\.control"'
)

# The largest ordinary table that no foreign key points at and no view reads (a partition only
# when there is no such table): an accident there can be undone without touching anything else.
VICTIM_SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', %(drill)s)
  AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = c.oid
                  AND f.conrelid <> c.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = c.oid
                  AND r.ev_class <> c.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass
                  AND e.objid = c.oid AND e.deptype = 'e')
ORDER BY c.relispartition, c.reltuples DESC, pg_total_relation_size(c.oid) DESC, 1
LIMIT 1
"""
LEDGER_SQL = f"""
CREATE SCHEMA IF NOT EXISTS {DRILL_SCHEMA};
CREATE TABLE IF NOT EXISTS {DRILL_SCHEMA}.writes (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

Seed = Callable[[Node, str], object]


class TeamData(Protocol):
    """What every member of the family provides."""

    dbname: str

    def describe(self) -> str:
        """One line for the report header: what is loaded, from where."""
        ...

    def load(self, node: Node) -> None:
        """Create :attr:`dbname` on ``node`` (a running primary) and fill it."""
        ...

    def victim(self, node: Node) -> str:
        """The qualified table an accident (DELETE, DROP) hits in the drills."""
        ...


@dataclass
class BuiltinData:
    """pytest-pgdr's own faker dataset (employees, users, orders, a large object)."""

    dataset: Dataset = field(default_factory=Dataset)
    dbname: str = "app"
    victim_table: str = "public.employees"

    def describe(self) -> str:
        return f"built-in dataset (scale {self.dataset.scale:g}) in database {self.dbname!r}"

    def load(self, node: Node) -> None:
        self.dataset.load(node, self.dbname)

    def victim(self, node: Node) -> str:
        return checked_victim(node, self.dbname, self.victim_table)


@dataclass
class FilesData:
    """The team's schema and data from files, loaded in order: ``.sql`` files through psql,
    dumps (custom, tar or directory format) through pg_restore, and directories of
    migrations (their ``*.sql`` files in name order)."""

    paths: Sequence[Path]
    dbname: str = "app"
    victim_table: str = "auto"

    def describe(self) -> str:
        names = ", ".join(str(p) for p in self.paths)
        return f"team schema from {names} in database {self.dbname!r}"

    def load(self, node: Node) -> None:
        create_database(node, self.dbname)
        for path in self.paths:
            for step in expand(path):
                load_file(node, step, self.dbname)

    def victim(self, node: Node) -> str:
        return checked_victim(node, self.dbname, self.victim_table)


@dataclass
class SeedData:
    """The team's own Python: a ``pytest_pgdr_seed(node, dbname)`` hook in any conftest."""

    seed: Seed
    dbname: str = "app"
    victim_table: str = "auto"
    origin: str = "the pytest_pgdr_seed hook"

    def describe(self) -> str:
        return f"team data from {self.origin} in database {self.dbname!r}"

    def load(self, node: Node) -> None:
        create_database(node, self.dbname)
        try:
            self.seed(node, self.dbname)
        except ToolError as exc:
            raise with_extension_advice(exc, node) from exc

    def victim(self, node: Node) -> str:
        return checked_victim(node, self.dbname, self.victim_table)


def choose_team_data(
    paths: Sequence[str],
    seed: Seed | None,
    dbname: str = "app",
    victim_table: str = "auto",
    dataset: Dataset | None = None,
) -> TeamData:
    """The one place a member is chosen: the seed hook, else schema files, else the built-in
    dataset. Files that do not exist are a :class:`ConfigError` now, not at the first drill."""
    if seed is not None and paths:
        raise ConfigError(
            "Both a pytest_pgdr_seed hook and pgdr_schema files say what the database holds",
            "the drills load one or the other",
            "Keep one: the files (no Python) or the hook (anything else)",
        )
    if seed is not None:
        return SeedData(seed, dbname, victim_table)
    if paths:
        files = [Path(p).expanduser() for p in paths]
        missing = [str(p) for p in files if not p.exists()]
        if missing:
            raise ConfigError(
                f"pgdr_schema names files that do not exist: {', '.join(missing)}",
                "relative paths are read from the rootdir (where pytest's ini file is)",
                "Fix the paths in pgdr_schema / --pgdr-schema",
            )
        return FilesData(files, dbname, victim_table)
    victim = "public.employees" if victim_table == "auto" else victim_table
    return BuiltinData(dataset or Dataset(), dbname, victim)


# loading files ------------------------------------------------------------------------------
def expand(path: Path) -> list[Path]:
    """A migrations directory becomes its ``*.sql`` files in name order; a pg_dump directory
    (it has a ``toc.dat``) and a file stay as they are."""
    if path.is_dir() and not (path / "toc.dat").exists():
        return sorted(p for p in path.iterdir() if p.suffix == ".sql" and p.is_file())
    return [path]


def is_archive(path: Path) -> bool:
    """A pg_restore archive (custom or tar format, or a directory dump)?"""
    if path.is_dir():
        return True
    with open(path, "rb") as fh:
        head = fh.read(512)
    return head.startswith(b"PGDMP") or head[257:262] == b"ustar"


def load_file(node: Node, path: Path, dbname: str) -> None:
    """Load one file into ``dbname``: psql for SQL (stops at the first error), pg_restore for
    an archive. The file is staged where the server user can read it."""
    staged = stage(node, path)
    try:
        if is_archive(path):
            node.run_tool("pg_restore", "--no-owner", "-d", dbname, staged, timeout=3600)
        else:
            node.run_tool(
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                dbname,
                "-f",
                staged,
                timeout=3600,
            )
    except ToolError as exc:
        raise with_extension_advice(exc, node, path) from exc


def stage(node: Node, path: Path) -> Path:
    """Copy ``path`` into the node's directory, owned by the server user."""
    target = node.root / "team" / path.name
    node.host.make_dir(target.parent)
    if path.is_dir():
        shutil.copytree(path, target, dirs_exist_ok=True)
        for sub in [target, *target.rglob("*")]:
            node.host.user.chown(sub)
    else:
        shutil.copyfile(path, target)
        node.host.user.chown(target)
    return target


def with_extension_advice(exc: PgdrError, node: Node, path: Path | None = None) -> PgdrError:
    """A load that failed on a missing extension says which installations have it."""
    match = MISSING_EXTENSION.search(str(exc))
    if match is None:
        return exc
    name = match.group(1) or match.group(2)
    have = installations_with_extension(name)
    where = f" while loading {path}" if path else ""
    return PgdrError(
        f"The team's schema needs the extension {name!r}, which {node.inst.describe()} does not"
        f" have{where}",
        "PostgreSQL cannot create an extension whose files are not installed"
        + (f"; found in: {', '.join(have)}" if have else "; no installation here has it"),
        "Run the drills on an installation that has it (--pgdr-postgres), install its package"
        " (Debian: postgresql-contrib or postgresql-N-<extension>), or leave it out of the"
        " drill's schema",
        log_lines=str(exc).splitlines()[-6:],
    )


def installations_with_extension(name: str) -> list[str]:
    """Installations on this machine whose share directory has ``name``'s control file."""
    found = [
        f"PostgreSQL {p.parent.parent.name} (/usr/lib/postgresql/{p.parent.parent.name})"
        for p in sorted(Path("/usr/share/postgresql").glob(f"*/extension/{name}.control"))
    ]
    try:
        from pytest_pgdr.hosts.install import find_installation

        embedded = find_installation("embedded").bindir.parent / "share" / "extension"
        if (embedded / f"{name}.control").exists():
            found.append("the embedded PostgreSQL")
    except PgdrError:
        pass
    return found


# the victim ---------------------------------------------------------------------------------
def checked_victim(node: Node, dbname: str, configured: str) -> str:
    """``configured`` if it names an existing table, else (``auto``) the largest table no
    foreign key or view depends on."""
    if configured != "auto":
        found = node.scalar("SELECT to_regclass(%s)::text", [configured], dbname=dbname)
        if found is None:
            raise ConfigError(
                f"The victim table {configured!r} does not exist in database {dbname!r}",
                "pgdr_victim names the table the drills' accidents (DELETE, DROP) hit",
                "Name an existing table (schema.table), or use auto for the largest one",
            )
        return qualified(node, dbname, str(found))
    found = node.scalar(VICTIM_SQL, {"drill": DRILL_SCHEMA}, dbname=dbname)
    if found is None:
        raise ConfigError(
            f"Database {dbname!r} has no table the drills can safely damage",
            "the victim must be an ordinary table that no foreign key or view depends on"
            " (so an accident to it can be undone alone)",
            "Set pgdr_victim to a table, or add one to the schema the drills load",
        )
    return str(found)


def qualified(node: Node, dbname: str, name: str) -> str:
    row = node.query(
        "SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s::regclass",
        [name],
        dbname=dbname,
    )
    return str(row[0][0])


# the drills' own writes -------------------------------------------------------------------
def ledger_table(node: Node, dbname: str) -> str:
    """Create (once) the drills' writes table apart from the team's; its qualified name."""
    node.psql(LEDGER_SQL, dbname)
    return f"{DRILL_SCHEMA}.writes"


def ledger_rows(node: Node, ledger: str, dbname: str) -> int:
    """How many commits the ledger table ``ledger`` holds on ``node``."""
    return int(node.scalar(f"SELECT count(*) FROM {ledger}", dbname=dbname))


def app_write(node: Node, dbname: str, count: int = 1) -> list[int]:
    """``count`` acknowledged commits, one transaction each, into the drills' writes table;
    their ids (the client-side ledger a drill checks after recovery)."""
    table = sql.Identifier(DRILL_SCHEMA, "writes").as_string(None)
    return [
        int(node.scalar(f"INSERT INTO {table} DEFAULT VALUES RETURNING id", dbname=dbname))
        for _ in range(count)
    ]


@dataclass(frozen=True)
class Accident:
    """What an accidental DELETE did: its transaction id, the server clock just before it,
    and how many rows it removed."""

    xid: str
    before: dt.datetime  # clock_timestamp() just before the DELETE
    deleted: int


def accidental_delete(node: Node, dbname: str, victim: str, where: str = "true") -> Accident:
    """``DELETE FROM victim WHERE where`` in one committed transaction, foreign keys that point
    at it not enforced (as if the application had no such constraint): the disaster."""
    with node.connect(dbname, autocommit=False) as conn:
        before = conn.execute("SELECT clock_timestamp()").fetchone()
        conn.execute("SET LOCAL session_replication_role = replica")
        deleted = conn.execute(f"DELETE FROM {victim} WHERE {where}").rowcount  # noqa: S608
        xid = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        conn.commit()
    assert before is not None and xid is not None
    return Accident(str(xid[0]), before[0], int(deleted))


def is_partition(node: Node, dbname: str, table: str) -> bool:
    return bool(
        node.scalar(
            "SELECT relispartition FROM pg_class WHERE oid = %s::regclass", [table], dbname=dbname
        )
    )
