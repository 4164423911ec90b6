"""The split-brain check: never two nodes accepting writes at once.

:func:`assert_single_writer` connects to every node it is given (whatever any cluster manager
believes), and on each that says it is not in recovery it commits one real write: a row in
``pgdr_drill.split_brain_probe`` of ``dbname``, created in the same transaction. A node that
commits it, and acknowledges it (a synchronous commit cancelled by the timeout is not an
acknowledgement), accepts writes. Two such nodes are a split brain: :class:`SplitBrain`.

Put it in your own drills after every fault and every recovery::

    leader = assert_single_writer(cluster.nodes)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from pytest_pgdr.basics.errors import PgdrError

__all__ = ["SplitBrain", "WriteProbe", "assert_single_writer", "probe", "probes", "writers"]

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node

PROBE_SQL = (
    "CREATE SCHEMA IF NOT EXISTS pgdr_drill",
    "CREATE TABLE IF NOT EXISTS pgdr_drill.split_brain_probe"
    " (node text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
)
INSERT_SQL = "INSERT INTO pgdr_drill.split_brain_probe (node) VALUES (%s)"
SYNC_CANCELED = "canceling wait for synchronous replication"


class SplitBrain(PgdrError, AssertionError):
    """More than one node accepted a write (a failed assertion in a drill)."""


@dataclass(frozen=True)
class WriteProbe:
    """What one node did with the probe write."""

    node: str
    reachable: bool
    in_recovery: bool | None
    accepted: bool
    detail: str
    timeline: int | None = None

    def line(self) -> str:
        role = {None: "?", True: "in recovery", False: "not in recovery"}[self.in_recovery]
        tli = f", timeline {self.timeline}" if self.timeline else ""
        verdict = "ACCEPTED a write" if self.accepted else "refused"
        return f"{self.node}: {role}{tli}, {verdict} ({self.detail})"


def probe(node: Node, dbname: str = "postgres", timeout: float = 2.0) -> WriteProbe:
    """Try one acknowledged write on ``node``; never raises for an unreachable node."""
    try:
        conn = node.connect(
            dbname,
            connect_timeout=max(2, int(timeout)),
            options=f"-c statement_timeout={int(timeout * 1000)}",
        )
    except psycopg.Error as exc:
        return WriteProbe(node.name, False, None, False, _first_line(exc))
    with conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        try:
            in_recovery = bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])  # type: ignore[index]
        except psycopg.Error as exc:
            return WriteProbe(node.name, False, None, False, _first_line(exc))
        if in_recovery:
            return WriteProbe(node.name, True, True, False, "a standby")
        try:
            with conn.transaction():
                for statement in PROBE_SQL:
                    conn.execute(statement)
                conn.execute(INSERT_SQL, [node.name])
            tli = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        except psycopg.Error as exc:
            return WriteProbe(node.name, True, False, False, _first_line(exc))
        if any(SYNC_CANCELED in n for n in notices):
            return WriteProbe(node.name, True, False, False, "commit not acknowledged")
        timeline = int(str(tli[0])[:8], 16) if tli else None
        return WriteProbe(node.name, True, False, True, "committed", timeline)


def writers(nodes: Iterable[Node], dbname: str = "postgres", timeout: float = 2.0) -> list[Node]:
    """The nodes that accept (and acknowledge) a write right now."""
    nodes = list(nodes)
    return [n for n, p in zip(nodes, probes(nodes, dbname, timeout), strict=True) if p.accepted]


def probes(
    nodes: Iterable[Node], dbname: str = "postgres", timeout: float = 2.0
) -> list[WriteProbe]:
    return [probe(node, dbname, timeout) for node in nodes]


def assert_single_writer(
    nodes: Iterable[Node],
    dbname: str = "postgres",
    timeout: float = 2.0,
    allow_none: bool = False,
) -> Node | None:
    """Fail (:class:`SplitBrain`) when two or more of ``nodes`` accept a write, or when none
    does unless ``allow_none``; return the one writer."""
    nodes = list(nodes)
    results = probes(nodes, dbname, timeout)
    accepted = [n for n, p in zip(nodes, results, strict=True) if p.accepted]
    if len(accepted) > 1:
        raise SplitBrain(
            f"Split brain: {len(accepted)} nodes accepted writes at once"
            f" ({', '.join(n.name for n in accepted)})",
            "each said it is not in recovery and committed the probe row; clients of either"
            " see their writes acknowledged, and one side's writes will be thrown away",
            "Fence the old primary before (or as) a new one is promoted: stop it whole, not"
            " just its cluster manager",
            log_lines=[p.line() for p in results],
            log_name="write probes",
        )
    if not accepted and not allow_none:
        raise SplitBrain(
            "No node accepted a write",
            "every node is down, in recovery or refused the probe row",
            "Wait for a leader before checking, or pass allow_none=True",
            log_lines=[p.line() for p in results],
            log_name="write probes",
        )
    return accepted[0] if accepted else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
