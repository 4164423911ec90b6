"""A client that keeps writing through a disaster: the write outage and RPO a user would see.

A background thread commits one row a tick to a probe table (CloudNativePG's ``tl`` table:
each row records its timeline and the server clock) and keeps a client-side ledger of every
acknowledged commit (Jepsen style). It follows failover: on an error it reconnects to whichever
candidate node is writable. Afterwards:

- :meth:`Writer.outage` is the gap between the last acknowledged write before the fault and
  the first one after recovery;
- :meth:`Writer.lost_commits` / :meth:`Writer.rpo` count the acknowledged commits missing from
  the recovered node, once its recovery has finished.

::

    with Writer(lambda: [primary, replica], rate=50) as w:
        w.wait_for_acks(10)
        rto = measurement.declare_disaster()
        primary.crash()
        ...promote replica...
        w.wait_for_acks(1, after=rto.started_at)
    measurement.record_outage(w.outage(fault_at=rto.started_at))
    measurement.record_rpo(w.rpo(replica))
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_pgdr.basics.errors import ConfigError, RecoveryError, WaitTimeout
from pytest_pgdr.basics.wait import deadline_for

if TYPE_CHECKING:
    from pytest_pgdr.cluster.lsn import Lsn
    from pytest_pgdr.cluster.node import Node

PROBE_TABLE = "pgdr_probe"
SYNC_CANCELED = "canceling wait for synchronous replication"
MAX_ERRORS_KEPT = 200
LOST_SHOWN = 50


@dataclass(frozen=True)
class Ack:
    """One acknowledged commit: the client's clock when the commit returned, the server's."""

    id: int
    client_t: float
    server_t: datetime
    timeline: int
    node: str
    lsn: str

    def as_dict(self, origin: float | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "t_s": _rel(self.client_t, origin),
            "server_time": self.server_t.isoformat(),
            "timeline": self.timeline,
            "node": self.node,
            "lsn": self.lsn,
        }


@dataclass(frozen=True)
class WriteError:
    client_t: float
    node: str
    message: str


@dataclass(frozen=True)
class Outage:
    """The write outage a client saw around ``fault_at``."""

    fault_at: float | None
    last_before: Ack | None
    first_after: Ack | None
    attempts_failed: int
    ended_at: float

    @property
    def seconds(self) -> float | None:
        if self.last_before is None or self.first_after is None:
            return None
        return self.first_after.client_t - self.last_before.client_t

    @property
    def server_gap_s(self) -> float | None:
        """The same gap by the server clocks (CloudNativePG's write RTO)."""
        if self.last_before is None or self.first_after is None:
            return None
        return (self.first_after.server_t - self.last_before.server_t).total_seconds()

    def as_dict(self, origin: float | None = None) -> dict[str, Any]:
        before, after = self.last_before, self.first_after
        start = before.client_t if before else self.fault_at
        return {
            "seconds": _round(self.seconds),
            "server_gap_s": _round(self.server_gap_s),
            "recovered": after is not None,
            "start_s": _rel(start, origin),
            "end_s": _rel(after.client_t if after else self.ended_at, origin),
            "fault_s": _rel(self.fault_at, origin),
            "last_before": before.as_dict(origin) if before else None,
            "first_after": after.as_dict(origin) if after else None,
            "failed_attempts": self.attempts_failed,
        }


@dataclass(frozen=True)
class Rpo:
    """Acknowledged commits missing from ``node``, and the WAL the new timeline left behind."""

    node: str
    acknowledged: int
    lost: tuple[Ack, ...]
    window_s: float
    wal_bytes: int | None = None
    old_lsn: str | None = None
    timeline_start: str | None = None

    @property
    def lost_commits(self) -> int:
        return len(self.lost)

    def as_dict(self, origin: float | None = None) -> dict[str, Any]:
        return {
            "checked_on": self.node,
            "acknowledged": self.acknowledged,
            "lost_commits": self.lost_commits,
            "window_s": round(self.window_s, 6),
            "wal_bytes": self.wal_bytes,
            "old_lsn": self.old_lsn,
            "timeline_start": self.timeline_start,
            "lost": [a.as_dict(origin) for a in self.lost[:LOST_SHOWN]],
        }


@dataclass
class _Ledger:
    """Everything the writer thread learns; guarded by ``cond``."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    acks: list[Ack] = field(default_factory=list)
    errors: list[WriteError] = field(default_factory=list)
    failed: int = 0
    unacknowledged: list[int] = field(default_factory=list)


class Writer:
    """Commit to ``table`` ``rate`` times a second on whichever candidate node is writable.

    ``nodes`` is a node, a list of nodes, or a callable returning the current candidates
    (so a drill can add the promoted node later). The thread stops by itself after
    ``max_duration`` seconds; ``stop()`` (or leaving the ``with`` block) ends it sooner.
    """

    def __init__(
        self,
        nodes: Node | Sequence[Node] | Callable[[], Iterable[Node]],
        rate: float = 50.0,
        max_duration: float = 300.0,
        table: str = PROBE_TABLE,
        dbname: str = "postgres",
        connect_timeout: int = 2,
        write_timeout: float = 5.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if rate <= 0 or max_duration <= 0:
            raise ConfigError(
                f"Bad writer rate {rate!r} or max_duration {max_duration!r}", "both must be above 0"
            )
        self._candidates = _candidates(nodes)
        self.interval = 1.0 / rate
        self.max_duration = max_duration
        self.table = table
        self.dbname = dbname
        self.connect_timeout = connect_timeout
        self.write_timeout_ms = int(write_timeout * 1000)
        self.clock = clock
        self.ledger = _Ledger()
        self.fault_at: float | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._next_id = 1
        self._conn: psycopg.Connection[Any] | None = None
        self._node_name = ""
        self._notices: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle --------------------------------------------------------------------------
    def start(self) -> Writer:
        """Create the probe table on the writable node, then start writing in the background."""
        node = self._writable_node()
        if node is None:
            raise RecoveryError(
                "The writer found no writable node to start on",
                f"candidates: {', '.join(n.name for n in self._candidates())}",
                "Start the primary before the writer",
            )
        node.query(
            f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY,"
            " timeline text NOT NULL"
            " DEFAULT substring(pg_walfile_name(pg_current_wal_lsn()), 1, 8),"
            " t timestamptz NOT NULL DEFAULT clock_timestamp(),"
            " lsn pg_lsn NOT NULL DEFAULT pg_current_wal_insert_lsn())",
            dbname=self.dbname,
        )
        self.started_at = self.clock()
        self._thread = threading.Thread(target=self._run, name="pgdr-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop writing; a commit stuck on the server is cancelled (and not acknowledged)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(min(timeout, self.interval + 1.0))
            if thread.is_alive() and self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.cancel()
            thread.join(timeout)
        self._close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Writer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        assert self.started_at is not None
        end = self.started_at + self.max_duration
        tick = self.started_at
        try:
            while not self._stop.is_set() and self.clock() < end:
                self._step()
                tick = max(tick + self.interval, self.clock())
                self._stop.wait(max(0.0, tick - self.clock()))  # the rate; stop() wakes it
        finally:
            self.stopped_at = self.clock()
            self._close()
            with self.ledger.cond:
                self.ledger.cond.notify_all()

    def _step(self) -> None:
        if self._conn is None:
            self._conn = self._connect_writable()
            if self._conn is None:
                return
        row_id = self._next_id
        self._next_id += 1
        try:
            self._notices.clear()
            cur = self._conn.execute(
                f"INSERT INTO {self.table} (id) VALUES (%s) RETURNING timeline, t, lsn::text",
                [row_id],
            )
            row = cur.fetchone()
        except psycopg.Error as exc:
            self._failed(row_id, str(exc).strip().splitlines()[0] if str(exc) else repr(exc))
            self._close()
            return
        if any(SYNC_CANCELED in n for n in self._notices):
            self._failed(row_id, "commit not acknowledged: " + self._notices[-1])
            return
        assert row is not None  # INSERT ... RETURNING gives one row
        timeline, server_t, lsn = row
        self._acked(Ack(row_id, self.clock(), server_t, int(timeline, 16), self._node_name, lsn))

    def _acked(self, ack: Ack) -> None:
        with self.ledger.cond:
            self.ledger.acks.append(ack)
            self.ledger.cond.notify_all()

    def _failed(self, row_id: int | None, message: str) -> None:
        with self.ledger.cond:
            if row_id is not None:
                self.ledger.failed += 1
                self.ledger.unacknowledged.append(row_id)
            if len(self.ledger.errors) < MAX_ERRORS_KEPT:
                self.ledger.errors.append(WriteError(self.clock(), self._node_name, message))

    def _connect_writable(self) -> psycopg.Connection[Any] | None:
        for node in self._candidates():
            if not _maybe_running(node):
                continue
            try:
                conn = self._open(node)
            except psycopg.Error as exc:
                self._failed(None, f"connect to {node.name}: {str(exc).strip()[:200]}")
                continue
            if conn is not None:
                self._node_name = node.name
                return conn
        return None

    def _open(self, node: Node) -> psycopg.Connection[Any] | None:
        conn = node.connect(
            self.dbname,
            connect_timeout=self.connect_timeout,
            options=f"-c statement_timeout={self.write_timeout_ms}",
        )
        conn.add_notice_handler(lambda diag: self._notices.append(diag.message_primary or ""))
        if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,):
            return conn
        conn.close()
        return None

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _writable_node(self) -> Node | None:
        for node in self._candidates():
            if _maybe_running(node) and node.try_scalar("SELECT pg_is_in_recovery()") is False:
                return node
        return None

    # what the ledger says ---------------------------------------------------------------
    @property
    def acks(self) -> list[Ack]:
        with self.ledger.cond:
            return list(self.ledger.acks)

    @property
    def errors(self) -> list[WriteError]:
        with self.ledger.cond:
            return list(self.ledger.errors)

    def mark_fault(self, at: float | None = None) -> float:
        """Remember when the fault was injected (default: now, on the writer's clock)."""
        self.fault_at = self.clock() if at is None else at
        return self.fault_at

    def wait_for_acks(
        self, count: int = 1, after: float | None = None, timeout: float | None = None
    ) -> Ack:
        """Wait until ``count`` commits were acknowledged after ``after`` (clock reading)."""
        deadline = deadline_for(timeout)
        with self.ledger.cond:
            while True:
                fresh = [a for a in self.ledger.acks if after is None or a.client_t > after]
                if len(fresh) >= count:
                    return fresh[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    break
                self.ledger.cond.wait(left)
        raise WaitTimeout(
            f"Waited for {count} acknowledged write(s) from the writer; got {len(fresh)}",
            "no candidate node accepted writes" if self.running else "the writer has stopped",
            "Check that a candidate node was promoted; the writer's last errors are below",
            log_lines=[f"{e.node or '-'}: {e.message}" for e in self.errors[-8:]],
            log_name="writer errors",
        )

    def outage(self, fault_at: float | None = None) -> Outage:
        """The gap between the last write acknowledged before the fault and the first after.

        Without a fault time (argument or :meth:`mark_fault`), the longest gap between two
        consecutive acknowledged writes.
        """
        acks = self.acks
        fault_at = self.fault_at if fault_at is None else fault_at
        if fault_at is None:
            fault_at = _longest_gap_start(acks)
        before = [a for a in acks if fault_at is not None and a.client_t <= fault_at]
        after = [a for a in acks if fault_at is not None and a.client_t > fault_at]
        ended = self.stopped_at if self.stopped_at is not None else self.clock()
        return Outage(
            fault_at,
            before[-1] if before else None,
            after[0] if after else None,
            self._failed_between(before, after),
            ended,
        )

    def _failed_between(self, before: list[Ack], after: list[Ack]) -> int:
        low = before[-1].id if before else 0
        high = after[0].id if after else self._next_id
        with self.ledger.cond:
            return sum(1 for i in self.ledger.unacknowledged if low < i < high)

    def lost_commits(self, node: Node, allow_standby: bool = False) -> list[Ack]:
        """Acknowledged commits missing from ``node``: call once its recovery has finished."""
        if not allow_standby and node.in_recovery():
            raise RecoveryError(
                f"{node.name} is still in recovery: counting lost commits now reads WAL not yet"
                " replayed as lost",
                "RPO is only meaningful once recovery has finished",
                "Promote the node and wait (pgdr.promote / wait_promoted) before counting",
            )
        acks = self.acks
        try:
            rows = node.query(
                f"SELECT id FROM {self.table} WHERE id = ANY(%s::bigint[])",
                [[a.id for a in acks]],
                dbname=self.dbname,
            )
        except psycopg.errors.UndefinedTable:
            rows = []
        present = {r[0] for r in rows}
        return [a for a in acks if a.id not in present]

    def rpo(self, node: Node, old_flush: Lsn | None = None, allow_standby: bool = False) -> Rpo:
        """Lost commits on ``node``, their time window, and the WAL distance in bytes between
        the old primary's last flush (``old_flush``; default: the last acknowledged write on
        the old timeline, a lower bound) and where ``node``'s timeline starts."""
        lost = self.lost_commits(node, allow_standby)
        acks = self.acks
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


def loss_window(acks: Sequence[Ack], lost: Sequence[Ack]) -> float:
    """Seconds of acknowledged writes lost: from the last surviving write before the first
    lost one to the last lost one (0 when nothing was lost)."""
    if not lost:
        return 0.0
    lost_ids = {a.id for a in lost}
    first = min(lost, key=lambda a: a.id)
    survivors = [a for a in acks if a.id < first.id and a.id not in lost_ids]
    since = survivors[-1].client_t if survivors else first.client_t
    return max(a.client_t for a in lost) - since


def timeline_start(node: Node) -> tuple[int, Lsn] | None:
    """(parent timeline, switch LSN) where ``node``'s current timeline begins, from its
    history file; None on timeline 1."""
    from pytest_pgdr.cluster.lsn import Lsn

    tli = node.timeline()
    if tli <= 1:
        return None
    text = node.scalar("SELECT pg_read_file(%s)", [f"pg_wal/{tli:08X}.history"])
    entries = [
        line.split()
        for line in str(text or "").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if not entries:
        return None
    return int(entries[-1][0]), Lsn.parse(entries[-1][1])


def _last_lsn(acks: Sequence[Ack], timeline: int) -> Lsn | None:
    from pytest_pgdr.cluster.lsn import Lsn

    lsns = [Lsn.parse(a.lsn) for a in acks if a.timeline == timeline]
    return max(lsns, key=lambda lsn: lsn.value) if lsns else None


def _longest_gap_start(acks: Sequence[Ack]) -> float | None:
    if len(acks) < 2:
        return None
    gaps = [(b.client_t - a.client_t, a.client_t) for a, b in zip(acks, acks[1:], strict=False)]
    return max(gaps)[1]


def _candidates(nodes: Any) -> Callable[[], Iterable[Node]]:
    if callable(nodes):
        return nodes  # type: ignore[no-any-return]
    if isinstance(nodes, list | tuple):
        return lambda: list(nodes)
    return lambda: [nodes]


def _maybe_running(node: Any) -> bool:
    check = getattr(node, "is_running", None)
    return bool(check()) if callable(check) else True


def _rel(t: float | None, origin: float | None) -> float | None:
    if t is None:
        return None
    return round(t - origin, 6) if origin is not None else round(t, 6)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
