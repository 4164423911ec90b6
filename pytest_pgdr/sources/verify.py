"""What every restored backup gets, whatever the team declared: every relation read once
(``pg_dump`` to /dev/null: a damaged heap page or TOAST chunk fails it) and, when the backup
has data checksums, every page checked with ``pg_checksums`` on the stopped sandbox."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_pgdr.basics.errors import ToolError
from pytest_pgdr.sources.base import SourceError
from pytest_pgdr.sources.progress import run_watched

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node


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
        proc = run_watched(node, argv, f"reading every relation of {db}", None)
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
