"""Logical backups: a ``pg_dump`` archive (custom, directory, tar) or script, and a
``pg_dumpall`` script, restored into a fresh sandbox server with PostgreSQL's own programs.

The major comes from the dump itself: an archive's header (read here byte by byte, the way
pg_restore reads it) or a script's ``-- Dumped from database version`` line. Roles the dump
hands objects to are created (NOLOGIN) first, so owners and grants restore as they were.
"""

from __future__ import annotations

import datetime as dt
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from psycopg import sql

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.cluster.template import SUPERUSER
from pytest_pgdr.sources.base import (
    BackupIdentity,
    Restored,
    SourceSpec,
    bad_backup,
    check_readable,
    tree_size,
)
from pytest_pgdr.sources.progress import run_watched
from pytest_pgdr.sources.registry import check_options
from pytest_pgdr.sources.sandbox import adopt

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.recovery import RecoveryTarget
    from pytest_pgdr.cluster.topology import Topology

DUMPED_FROM = re.compile(r"^-- Dumped from database version (\d+)(?:\.(\d+))?")
DUMPED_BY = re.compile(r"^-- Dumped by pg_dump(?:all)? version (\S+)")
ROLE_USES = re.compile(
    r'OWNER TO "?([^";]+)"?;|FOR ROLE "?([^";\s]+)"?|^(?:GRANT|REVOKE) .* (?:TO|FROM) ([^;]+);',
    re.MULTILINE,
)
# a scratch server for a dump: no replica or pg_rewind will ever read its WAL, so hint bits
# need not be WAL-logged (the harness's nodes log them for pg_rewind)
SCRATCH = {"wal_log_hints": False}
HEADER_LINES = 400  # a script names its server version near the top
ALREADY_THERE = re.compile(r'ERROR:  role "[^"]+" already exists')


def _int(stream: IO[bytes], size: int) -> int:
    sign = stream.read(1)
    raw = stream.read(size)
    value = int.from_bytes(raw, "little")
    return -value if sign and sign[0] else value


def _str(stream: IO[bytes], size: int) -> str:
    length = _int(stream, size)
    return stream.read(length).decode(errors="replace") if length > 0 else ""


def read_archive_header(stream: IO[bytes]) -> dict[str, str]:
    """The header pg_dump writes at the start of a custom archive and of ``toc.dat``:
    archive version, creation time, database name, server and pg_dump versions."""
    if stream.read(5) != b"PGDMP":
        raise ValueError("no PGDMP magic")
    vmaj, vmin, vrev = stream.read(3)
    int_size, _off_size, _fmt = stream.read(3)
    if (vmaj, vmin) >= (1, 15):
        stream.read(1)  # compression algorithm
    else:
        _int(stream, int_size)  # compression level
    sec, minute, hour, mday, mon, year, _dst = (_int(stream, int_size) for _ in range(7))
    created = dt.datetime(year + 1900, mon + 1, mday, hour, minute, sec)  # local time of dump
    return {
        "archive_version": f"{vmaj}.{vmin}.{vrev}",
        "created": created.isoformat(),
        "dbname": _str(stream, int_size),
        "server_version": _str(stream, int_size),
        "pg_dump_version": _str(stream, int_size),
    }


def dump_format(path: Path) -> str:
    """custom, directory, tar or plain (a script); what the file itself says, not its name."""
    if path.is_dir():
        return "directory"
    with path.open("rb") as stream:
        head = stream.read(512)
    if head.startswith(b"PGDMP"):
        return "custom"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return "plain"


def _script_header(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with path.open(errors="replace") as text:
        for number, line in enumerate(text):
            if number > HEADER_LINES and "server_version" in out:
                break
            found = DUMPED_FROM.match(line)
            if found and "server_version" not in out:
                out["server_version"] = ".".join(g for g in found.groups() if g)
            by = DUMPED_BY.match(line)
            if by and "pg_dump_version" not in out:
                out["pg_dump_version"] = by.group(1)
            if number > 20 * HEADER_LINES:
                break
    return out


def _archive_header(path: Path, fmt: str) -> dict[str, str]:
    if fmt == "directory":
        with (path / "toc.dat").open("rb") as stream:
            return read_archive_header(stream)
    if fmt == "tar":
        with tarfile.open(path) as tar:
            member = tar.extractfile("toc.dat")
            if member is None:
                raise ValueError("no toc.dat in the tar archive")
            return read_archive_header(member)
    with path.open("rb") as stream:
        return read_archive_header(stream)


class Dump:
    """A ``pg_dump`` file or directory (custom, directory, tar or plain)."""

    pitr = False
    exact_major = False  # pg_restore loads a dump into its own major or any newer one
    OPTIONS: tuple[str, ...] = ("dbname", "jobs")

    def __init__(self, spec: SourceSpec) -> None:
        check_options(spec, self.OPTIONS)
        self.spec = spec
        self.path = Path(spec.path)
        self._header: dict[str, str] | None = None
        self._fmt = ""

    def paths(self) -> list[Path]:
        return [self.path]

    def header(self) -> dict[str, str]:
        if self._header is None:
            if not self.path.exists():
                raise bad_backup(self.spec, "does not exist", f"nothing at {self.path}")
            self._fmt = dump_format(self.path)
            try:
                reader = _script_header if self._fmt == "plain" else None
                self._header = (
                    reader(self.path) if reader else _archive_header(self.path, self._fmt)
                )
            except (OSError, ValueError, KeyError, tarfile.TarError) as exc:
                raise bad_backup(
                    self.spec, f"is not a readable {self._fmt} dump", f"its header: {exc}"
                ) from exc
        return self._header

    def major(self) -> int:
        given = self.spec.option("major")
        version = given or self.header().get("server_version", "")
        match = re.match(r"(\d+)", version)
        if match is None:
            raise bad_backup(
                self.spec,
                "does not say which PostgreSQL it came from",
                "no 'Dumped from database version' line near the top of the script",
                ["Add ?major=N to the source if the dump's header was stripped"],
            )
        return int(match.group(1))

    def dbname(self) -> str:
        return self.spec.option("dbname") or self.header().get("dbname") or self.spec.name

    def identity(self) -> BackupIdentity:
        head = self.header()
        created = head.get("created") or _mtime(self.path)
        return BackupIdentity(
            kind=f"pg_dump {self._fmt}",
            label=self.path.name,
            major=self.major(),
            server_version=head.get("server_version", ""),
            tool_version=f"pg_dump {head.get('pg_dump_version', '?')}",
            started=created,
            stopped=created,
            size=tree_size(self.paths()),
            databases=(self.dbname(),),
            extra={"format": self._fmt, "archive": head.get("archive_version", "")},
        )

    def restore(self, topology: Topology, target: RecoveryTarget, stopwatch: Stopwatch) -> Restored:
        _no_target(self.spec, target)
        identity = self.identity()
        node = topology.primary(name="sandbox", archive=False, settings=SCRATCH)
        check_readable(node.host, self.spec, self.paths())
        stopwatch.lap("start sandbox")
        create_roles(node, self._roles(node))
        dbname = self.dbname()
        create = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname))
        node.query(create.as_string(None))
        what = f"restoring {self.spec.name} ({self._fmt} dump)"
        argv = self._restore_argv(node, dbname)
        proc = run_watched(node, argv, what, identity.size, dbname)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
            raise bad_backup(
                self.spec,
                "did not restore: it is damaged or incomplete",
                _why(lines),
                lines[-15:],
            )
        stopwatch.lap("restore dump")
        return Restored(node, identity, (dbname,), identity.size)

    def _restore_argv(self, node: Node, dbname: str) -> list[str]:
        if self._fmt == "plain":
            return [
                str(node.inst.tool("psql")),
                *("-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"),
                *("-d", dbname, "-f", str(self.path)),
            ]
        jobs = self.spec.option("jobs", "2" if self._fmt in ("custom", "directory") else "")
        return [
            str(node.inst.tool("pg_restore")),
            "--exit-on-error",
            *(["-j", jobs] if jobs and jobs != "1" else []),
            *("-d", dbname, str(self.path)),
        ]

    def _roles(self, node: Node) -> set[str]:
        if self._fmt == "plain":
            return roles_in_lines(_lines(self.path))
        proc = node.run_tool("pg_restore", "--schema-only", "-f", "-", self.path, check=False)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise bad_backup(self.spec, "cannot be read by pg_restore", _why(lines), lines[-15:])
        return roles_in_lines(proc.stdout.splitlines())


class DumpAll(Dump):
    """A ``pg_dumpall`` script: roles, then every database, replayed with psql."""

    OPTIONS: tuple[str, ...] = ()

    def identity(self) -> BackupIdentity:
        found = super().identity()
        found.kind = "pg_dumpall"
        found.databases = ()
        found.tool_version = found.tool_version.replace("pg_dump ", "pg_dumpall ")
        return found

    def restore(self, topology: Topology, target: RecoveryTarget, stopwatch: Stopwatch) -> Restored:
        _no_target(self.spec, target)
        if dump_format(self.path) != "plain":
            raise bad_backup(self.spec, "is not a pg_dumpall script", "it is a pg_dump archive")
        identity = self.identity()
        node = topology.primary(name="sandbox", archive=False, settings=SCRATCH)
        check_readable(node.host, self.spec, self.paths())
        stopwatch.lap("start sandbox")
        argv = [str(node.inst.tool("psql")), "-X", "-q", "-d", "postgres", "-f", str(self.path)]
        # over the socket: the script sets the superuser's password to the source's own
        what = f"restoring {self.spec.name} (pg_dumpall)"
        proc = run_watched(node, argv, what, identity.size, socket=True)
        adopt(node, SUPERUSER)
        errors = [ln for ln in proc.stderr.splitlines() if "ERROR:" in ln or "FATAL:" in ln]
        unexpected = [ln for ln in errors if not ALREADY_THERE.search(ln)]
        if proc.returncode != 0 or unexpected:
            raise bad_backup(
                self.spec, "did not restore cleanly", _why(unexpected), unexpected[-15:]
            )
        stopwatch.lap("restore dump")
        databases = tuple(
            str(name)
            for (name,) in node.query(
                "SELECT datname FROM pg_database WHERE NOT datistemplate"
                " AND datname <> 'postgres' ORDER BY 1"
            )
        )
        identity.databases = databases
        return Restored(node, identity, databases or ("postgres",), identity.size)


def roles_in_lines(lines: Iterator[str] | list[str]) -> set[str]:
    """Roles a dump's SQL hands objects or privileges to (PUBLIC aside)."""
    found: set[str] = set()
    copying = False
    for line in lines:
        if copying:
            copying = line.rstrip("\n") != "\\."
            continue
        if line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
            copying = True
            continue
        for match in ROLE_USES.finditer(line):
            for group in match.groups():
                for role in (group or "").split(","):
                    role = role.strip().strip('"')
                    if role and role.upper() != "PUBLIC" and " " not in role:
                        found.add(role)
    return found


def create_roles(node: Node, roles: set[str]) -> None:
    """Create the roles the sandbox lacks (NOLOGIN: they only own and receive grants)."""
    present = {str(r) for (r,) in node.query("SELECT rolname FROM pg_roles")}
    for role in sorted(roles - present):
        node.query(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)).as_string(None))


def _lines(path: Path) -> Iterator[str]:
    with path.open(errors="replace") as text:
        yield from text


def _why(lines: list[str]) -> str:
    errors = [ln for ln in lines if re.search(r"error|ERROR|FATAL|could not|unexpected", ln)]
    first = (errors or lines or ["no message"])[0].strip()
    return f"the restore program says: {first}"


def _mtime(path: Path) -> str:
    when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    return when.isoformat(timespec="seconds")


def _no_target(spec: SourceSpec, target: RecoveryTarget) -> None:
    if target.kind != "latest":
        raise ConfigError(
            f"Backup source {spec.name!r} is a dump: it has no recovery target",
            f"target={target.kind}:{target.value} applies to base backups with WAL only",
            "Remove ?target= from the source",
        )
