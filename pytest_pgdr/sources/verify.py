"""What every restored backup gets, whatever the team declared: every relation read once
(``pg_dump`` to /dev/null: a damaged heap page or TOAST chunk fails it) and, when the backup
has data checksums, every page checked with ``pg_checksums`` on the stopped sandbox."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_pgdr.basics.errors import ToolError
from pytest_pgdr.sources.base import SourceError, run_as_server
from pytest_pgdr.sources.progress import run_with_progress

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node


TABLES_SQL = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg\\_toast%'"
)


@dataclass(frozen=True)
class ReadAll:
    databases: tuple[str, ...]
    bytes: int  # size of the databases read
    seconds: float

    @property
    def rate(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def read_every_relation(node: Node, databases: tuple[str, ...]) -> ReadAll:
    """``pg_dump -f /dev/null`` of each database: every table's every row is read."""
    started = time.perf_counter()
    total = 0
    for db in databases:
        size = int(node.scalar("SELECT pg_database_size(%s)", [db]) or 0)
        total += size
        argv = [str(node.inst.tool("pg_dump")), "-f", "/dev/null", "-d", db]
        tables = node.scalar(TABLES_SQL, dbname=db)
        proc = run_with_progress(
            functools.partial(run_as_server, node.host, argv, "reading", env=node.tool_env()),
            f"reading every relation of {db}",
            _tables_started(node),
            float(tables or 0) or None,
            unit="tables",
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise SourceError(
                f"Reading every relation of database {db} in the restored backup failed",
                f"pg_dump says: {(lines or ['nothing'])[0]}",
                "The backup restored but holds unreadable data (a damaged page or TOAST"
                " value): do not rely on it",
                log_lines=lines[-15:],
                log_name="pg_dump output",
            )
    return ReadAll(databases, total, max(time.perf_counter() - started, 1e-6))


def _tables_started(node: Node) -> Callable[[], float]:
    """How many tables pg_dump has started to copy out (its COPY statements, as seen)."""
    seen: set[str] = set()

    def done() -> float:
        rows = node.query(
            "SELECT query FROM pg_stat_activity WHERE application_name = 'pg_dump'"
            " AND query LIKE 'COPY %'"
        )
        seen.update(str(query) for (query,) in rows)
        return float(len(seen))

    return done


def checksums_enabled(node: Node) -> bool:
    return str(node.scalar("SHOW data_checksums")) == "on"


def verify_checksums(node: Node) -> str:
    """``pg_checksums --check`` with the sandbox stopped (then started again); its summary."""
    node.stop()
    try:
        proc = node.run_tool("pg_checksums", "--check", "-D", node.datadir, timeout=3600)
    except ToolError as exc:
        raise SourceError(
            "pg_checksums found damaged pages in the restored backup",
            exc.what,
            "The backup holds pages whose checksum is wrong: do not rely on it",
            log_lines=exc.log_lines,
            log_name="pg_checksums output",
        ) from None
    finally:
        node.start()
    return proc.stdout.strip()
