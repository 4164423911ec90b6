"""RPO from a writer's ledger: the acknowledged commits a recovered node does not have, and
the WAL its new timeline left behind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import psycopg

from pytest_pgdr.basics.errors import RecoveryError
from pytest_pgdr.cluster.lsn import Lsn, history_parent
from pytest_pgdr.drill.ledger import Ack, Rpo, loss_window

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node


def lost_commits(
    acks: Sequence[Ack], node: Node, table: str, dbname: str, allow_standby: bool = False
) -> list[Ack]:
    """Acknowledged commits missing from ``node``: call once its recovery has finished."""
    if not allow_standby and node.in_recovery():
        raise RecoveryError(
            f"{node.name} is still in recovery: counting lost commits now reads WAL not yet"
            " replayed as lost",
            "RPO is only meaningful once recovery has finished",
            "Promote the node and wait (pgdr.promote / wait_promoted) before counting",
        )
    try:
        rows = node.query(
            f"SELECT id FROM {table} WHERE id = ANY(%s::bigint[])",
            [[a.id for a in acks]],
            dbname=dbname,
        )
    except psycopg.errors.UndefinedTable:
        rows = []
    present = {r[0] for r in rows}
    return [a for a in acks if a.id not in present]


def rpo_on(
    acks: Sequence[Ack],
    node: Node,
    table: str,
    dbname: str,
    old_flush: Lsn | None = None,
    allow_standby: bool = False,
) -> Rpo:
    """Lost commits on ``node``, their time window, and the WAL distance in bytes between
    the old primary's last flush (``old_flush``; default: the last acknowledged write on the
    old timeline, a lower bound) and where ``node``'s timeline starts."""
    lost = lost_commits(acks, node, table, dbname, allow_standby)
    start = timeline_start(node)
    wal_bytes = old_lsn = None
    if start is not None:
        parent, switch = start
        old = old_flush or _last_lsn(acks, parent)
        if old is not None:
            wal_bytes, old_lsn = max(0, old - switch), str(old)
    return Rpo(
        node.name,
        len(acks),
        tuple(lost),
        loss_window(acks, lost),
        wal_bytes,
        old_lsn,
        str(start[1]) if start else None,
    )


def timeline_start(node: Node) -> tuple[int, Lsn] | None:
    """(parent timeline, switch LSN) where ``node``'s current timeline begins, from its
    history file; None on timeline 1."""
    tli = node.timeline()
    if tli <= 1:
        return None
    text = node.scalar("SELECT pg_read_file(%s)", [f"pg_wal/{tli:08X}.history"])
    return history_parent(str(text or ""))


def _last_lsn(acks: Sequence[Ack], timeline: int) -> Lsn | None:
    lsns = [Lsn.parse(a.lsn) for a in acks if a.timeline == timeline]
    return max(lsns, key=lambda lsn: lsn.value) if lsns else None
