"""A client that keeps writing through a disaster: the write outage and RPO a user would see.

A background thread commits one row a tick to a probe table (CloudNativePG's ``tl`` table:
each row records its timeline and the server clock) and keeps a client-side ledger of every
acknowledged commit (Jepsen style). It follows failover: on an error it reconnects to whichever
candidate node is writable. Afterwards:

- :meth:`Writer.outage` runs from the fault to the first write acknowledged after recovery
  (not the dying server's in-flight acknowledgements; see :mod:`pytest_pgdr.drill.ledger`),
  or is unknown (None) when the writer saw neither a failure nor a gap;
- :meth:`Writer.lost_commits` / :meth:`Writer.rpo` count the acknowledged commits missing from
  the recovered node, once its recovery has finished.

::

    with Writer(lambda: [primary, replica], rate=50) as w:
        w.wait_for_acks(10)
        rto = measurement.declare_disaster()
        primary.crash()
        ...promote replica...
        w.wait_for_acks(1, after=rto.started_at)  # the first commit after recovery
    measurement.record_outage(w.outage(fault_at=rto.started_at))
    measurement.record_rpo(w.rpo(replica))
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_pgdr.basics.errors import ConfigError, RecoveryError, WaitTimeout
from pytest_pgdr.basics.wait import deadline_for
from pytest_pgdr.drill.clienterrors import OTHER, classify_exception
from pytest_pgdr.drill.clienterrors import UNACKNOWLEDGED as UNACKED
from pytest_pgdr.drill.ledger import Ack, Ledger, Outage, Rpo, WriteError, loss_window
from pytest_pgdr.drill.rpo import lost_commits, rpo_on, timeline_start

if TYPE_CHECKING:
    from pytest_pgdr.cluster.lsn import Lsn
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.ha.pooler import ClientPath

__all__ = ["Ack", "Outage", "Rpo", "WriteError", "Writer", "loss_window", "timeline_start"]

PROBE_TABLE = "pgdr_probe"
SYNC_CANCELED = "canceling wait for synchronous replication"
PROBE_DDL = (
    "CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY,"
    " timeline text NOT NULL DEFAULT substring(pg_walfile_name(pg_current_wal_lsn()), 1, 8),"
    " t timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " lsn pg_lsn NOT NULL DEFAULT pg_current_wal_insert_lsn())"
)
MIN_GAP_S = 0.05  # a pause in acknowledgements shorter than this is not an outage
MIN_GAP_TICKS = 5  # ... nor one shorter than this many ticks of the writer


class Writer:
    """Commit to ``table`` ``rate`` times a second on whichever candidate node is writable.

    ``nodes`` is a node, a list of nodes, or a callable returning the current candidates
    (so a drill can add the promoted node later). The thread stops by itself after
    ``max_duration`` seconds; ``stop()`` (or leaving the ``with`` block) ends it sooner.

    ``via`` (a :class:`~pytest_pgdr.ha.pooler.ClientPath`) makes it connect the way the
    application does instead (libpq multi-host, pgbouncer, pgpool-II): through that path's
    connection string, reconnecting through it after every error; each acknowledgement then
    names the server that took it (its ``cluster_name``). Failed attempts are counted by class
    (:meth:`errors_by_class`, and in :meth:`outage`).
    """

    def __init__(
        self,
        nodes: Node | Sequence[Node] | Callable[[], Iterable[Node]] = (),
        rate: float = 50.0,
        max_duration: float = 300.0,
        table: str = PROBE_TABLE,
        dbname: str = "postgres",
        connect_timeout: int = 2,
        write_timeout: float = 5.0,
        clock: Callable[[], float] = time.perf_counter,
        via: ClientPath | None = None,
    ) -> None:
        if rate <= 0 or max_duration <= 0:
            raise ConfigError(
                f"Bad writer rate {rate!r} or max_duration {max_duration!r}", "both must be above 0"
            )
        self._candidates = _candidates(nodes)
        self.via = via
        self.interval = 1.0 / rate
        self.max_duration = max_duration
        self.table = table
        self.dbname = dbname
        self.connect_timeout = connect_timeout
        self.write_timeout_ms = int(write_timeout * 1000)
        self.clock = clock
        self.ledger = Ledger()
        self.min_gap = max(MIN_GAP_S, MIN_GAP_TICKS * self.interval)
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
        if self.via is not None:
            with self._open_via() as conn:
                conn.execute(PROBE_DDL.format(table=self.table))
            return self._start_thread()
        node = self._writable_node()
        if node is None:
            raise RecoveryError(
                "The writer found no writable node to start on",
                f"candidates: {', '.join(n.name for n in self._candidates())}",
                "Start the primary before the writer",
            )
        node.query(PROBE_DDL.format(table=self.table), dbname=self.dbname)
        return self._start_thread()

    def _start_thread(self) -> Writer:
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
                f"INSERT INTO {self.table} (id) VALUES (%s)"
                " RETURNING timeline, t, lsn::text, current_setting('cluster_name')",
                [row_id],
            )
            row = cur.fetchone()
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc) else repr(exc)
            self._failed(row_id, message, kind=classify_exception(exc))
            self._close()
            return
        if any(SYNC_CANCELED in n for n in self._notices):
            self._failed(row_id, "commit not acknowledged: " + self._notices[-1], kind=UNACKED)
            return
        assert row is not None  # INSERT ... RETURNING gives one row
        timeline, server_t, lsn, server = row
        node = (server or "?") if self.via is not None else self._node_name  # through a pooler
        self._acked(Ack(row_id, self.clock(), server_t, int(timeline, 16), node, lsn))

    def _acked(self, ack: Ack) -> None:
        self.ledger.record_ack(ack)

    def _failed(
        self, row_id: int | None, message: str, node: str | None = None, kind: str = OTHER
    ) -> None:
        node = self._node_name if node is None else node
        self.ledger.record_failure(self.clock(), row_id, node, message, kind)

    def _connect_via(self, via: ClientPath) -> psycopg.Connection[Any] | None:
        try:
            conn = self._open_via()
        except psycopg.Error as exc:
            message = f"connect through {via.name}: {str(exc).strip()[:200]}"
            self._failed(None, message, via.name, classify_exception(exc))
            return None
        self._node_name = via.name
        return conn

    def _connect_writable(self) -> psycopg.Connection[Any] | None:
        if self.via is not None:
            return self._connect_via(self.via)
        for node in self._candidates():
            if not _maybe_running(node):
                continue
            try:
                conn = self._open(node)
            except psycopg.Error as exc:
                message = f"connect to {node.name}: {str(exc).strip()[:200]}"
                self._failed(None, message, node.name, classify_exception(exc))
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

    def _open_via(self) -> psycopg.Connection[Any]:
        """A connection through the client path (a pooler takes no ``options``: SET instead)."""
        assert self.via is not None
        conn = psycopg.connect(
            self.via.conninfo(self.dbname), autocommit=True, connect_timeout=self.connect_timeout
        )
        try:
            conn.execute(f"SET statement_timeout = {self.write_timeout_ms}")
        except BaseException:
            conn.close()
            raise
        conn.add_notice_handler(lambda diag: self._notices.append(diag.message_primary or ""))
        return conn

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

    def errors_by_class(self, after: float | None = None) -> dict[str, int]:
        """Failed attempts (commits and connections) by class, those after ``after`` only
        when given (see :mod:`~pytest_pgdr.drill.clienterrors`)."""
        return self.ledger.errors_by_class(after)

    def mark_fault(self, at: float | None = None) -> float:
        """Remember when the fault was injected (default: now, on the writer's clock)."""
        self.fault_at = self.clock() if at is None else at
        return self.fault_at

    def wait_for_acks(
        self,
        count: int = 1,
        after: float | None = None,
        timeout: float | None = None,
        since: float | None = None,
    ) -> Ack:
        """Wait until ``count`` commits were acknowledged after recovery from a fault at
        ``after`` (a clock reading), and return the last of them.

        The commits a dying server still acknowledged after ``after`` do not count: only those
        after the first failed attempt that followed ``after``, or, when none failed, from the
        commit that ended a gap of at least ``min_gap`` seconds (a frozen server). ``since``
        instead counts every commit acknowledged after that clock reading.
        """
        deadline = deadline_for(timeout)
        ledger = self.ledger
        with ledger.cond:
            while True:
                if after is not None:
                    first = ledger.recovery_index(after, self.min_gap)
                    fresh = [] if first is None else ledger.acks[first:]
                else:
                    fresh = [a for a in ledger.acks if since is None or a.client_t > since]
                if len(fresh) >= count:
                    return fresh[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    break
                ledger.cond.wait(left)
            in_flight = 0 if after is None else sum(1 for a in ledger.acks if a.client_t > after)
        why = "no candidate node accepted writes" if self.running else "the writer has stopped"
        if after is not None and fresh == [] and in_flight:
            why = (
                f"{in_flight} commit(s) were acknowledged after the fault, but with no failed"
                f" attempt and no gap of {self.min_gap * 1000:.0f} ms before them: the server"
                " that acknowledged them never went away"
            )
        raise WaitTimeout(
            f"Waited for {count} write(s) acknowledged by the writer after recovery; got"
            f" {len(fresh)}",
            why,
            "Check that a candidate node was promoted or restarted; the writer's last errors"
            " are below",
            log_lines=[f"{e.node or '-'}: {e.message}" for e in self.errors[-8:]],
            log_name="writer errors",
        )

    def outage(self, fault_at: float | None = None) -> Outage:
        """From the fault to the first write acknowledged after recovery (see
        :mod:`~pytest_pgdr.drill.ledger`); ``seconds`` is None when the writer saw neither a
        failed attempt nor a gap after the fault.

        Without a fault time (argument or :meth:`mark_fault`), the longest gap between two
        consecutive acknowledged writes.
        """
        fault_at = self.fault_at if fault_at is None else fault_at
        ended = self.stopped_at if self.stopped_at is not None else self.clock()
        return self.ledger.outage(fault_at, self.min_gap, ended)

    def lost_commits(self, node: Node, allow_standby: bool = False) -> list[Ack]:
        """Acknowledged commits missing from ``node``: call once its recovery has finished."""
        return lost_commits(self.acks, node, self.table, self.dbname, allow_standby)

    def rpo(self, node: Node, old_flush: Lsn | None = None, allow_standby: bool = False) -> Rpo:
        """Lost commits on ``node``, their time window, and the WAL distance in bytes between
        the old primary's last flush (``old_flush``; default: the last acknowledged write on
        the old timeline, a lower bound) and where ``node``'s timeline starts."""
        return rpo_on(self.acks, node, self.table, self.dbname, old_flush, allow_standby)


def _candidates(nodes: Any) -> Callable[[], Iterable[Node]]:
    if callable(nodes):
        return nodes  # type: ignore[no-any-return]
    if isinstance(nodes, list | tuple):
        return lambda: list(nodes)
    return lambda: [nodes]


def _maybe_running(node: Any) -> bool:
    check = getattr(node, "is_running", None)
    return bool(check()) if callable(check) else True
