"""A node: one PostgreSQL server with its data directory, port, settings and log."""

from __future__ import annotations

import contextlib
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import make_conninfo

from pytest_pgdr.basics.errors import RecoveryError, ServerStartError, ToolError
from pytest_pgdr.basics.wait import DEFAULT_TIMEOUT, poll, timeout_scale
from pytest_pgdr.cluster.conf import conf_value
from pytest_pgdr.cluster.lsn import Lsn
from pytest_pgdr.cluster.serverlog import ServerLog
from pytest_pgdr.hosts.install import Installation

if TYPE_CHECKING:
    from pytest_pgdr.cluster.credentials import Credentials
    from pytest_pgdr.hosts.base import Host, ServerProcess

STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
LSN_SQL = {
    "insert": "pg_current_wal_insert_lsn()",
    "write": "pg_current_wal_lsn()",
    "flush": "pg_current_wal_flush_lsn()",
    "replay": "pg_last_wal_replay_lsn()",
    "receive": "pg_last_wal_receive_lsn()",
}


class Node:
    """A PostgreSQL server. Create nodes through a :class:`~pytest_pgdr.Topology`."""

    def __init__(
        self,
        name: str,
        inst: Installation,
        host: Host,
        root: Path,
        port: int,
        credentials: Credentials,
    ) -> None:
        self.name = name
        self.inst = inst
        self.host = host
        self.root = root
        self.datadir = root / "data"
        self.sockdir = root / "sock"
        self.port = port
        self.credentials = credentials
        self.log = ServerLog(root / "postgres.log", host)
        self.conf: dict[str, object] = {}
        #: run once, after the first start that waited for the server to be ready
        self.after_first_start: list[Callable[[Node], object]] = []
        self.proc: ServerProcess | None = None
        self._conns: dict[str, psycopg.Connection[Any]] = {}

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<Node {self.name} pg{self.inst.major} port={self.port} {state}>"

    # settings ---------------------------------------------------------------------------
    def base_settings(self) -> dict[str, object]:
        return {
            "listen_addresses": self.host.listen_addresses(),
            "port": self.host.server_port(self.name, self.port),
            "unix_socket_directories": str(self.sockdir),
            "unix_socket_permissions": "0700",
            "cluster_name": self.name,
            "log_line_prefix": "%m [%p] ",
            "password_encryption": "scram-sha-256",
        }

    def configure(self, settings: Mapping[str, object] | None = None, **more: object) -> None:
        """Set server settings (written to the node's ``pgdr.conf``; None removes one)."""
        for key, value in {**(settings or {}), **more}.items():
            if value is None:
                self.conf.pop(key, None)
            else:
                self.conf[key] = value
        self.write_conf()

    def write_conf(self) -> None:
        merged = {**self.conf, **self.base_settings()}
        text = "".join(f"{k} = {conf_value(v)}\n" for k, v in merged.items())
        self.host.write_file(self.datadir / "pgdr.conf", "# written by pytest-pgdr\n" + text)
        self.host.write_file(self.datadir / "pg_hba.conf", self.host.hba_lines())

    def signal_file(self, name: str, present: bool = True) -> None:
        """Create or remove ``standby.signal`` / ``recovery.signal``."""
        path = self.datadir / f"{name}.signal"
        if present:
            self.host.write_file(path, "")
        else:
            self.host.remove_file(path)

    # process control --------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pm_status(self) -> str:
        """The postmaster's own status line: starting, standby, ready, stopping (or '')."""
        return self._pidfile()[1]

    def _pidfile(self) -> tuple[int | None, str]:
        """PID and status line of postmaster.pid, from one read (a new postmaster may replace
        a crashed one's file between two reads)."""
        try:
            lines = self.host.read_text(self.datadir / "postmaster.pid").splitlines()
        except (FileNotFoundError, PermissionError):
            return None, ""
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
        return pid, lines[7].strip() if len(lines) > 7 else ""

    def start(self, wait: bool = True, timeout: float | None = None) -> None:
        """Start the server; with ``wait``, until it accepts connections (as primary or standby)."""
        if self.is_running():
            return
        self.write_conf()
        offset = self.log.offset()
        argv = [str(self.inst.tool("postgres")), "-D", str(self.datadir)]
        self.proc = self.host.spawn_server(argv, self.log.path, host_port=self.port)
        if wait:
            poll(
                lambda: self._started(offset),
                f"{self.name} to accept connections",
                timeout,
                lambda: self.log.tail(offset=offset),
            )
            while self.after_first_start:  # e.g. the topology's credentials for a primary
                self.after_first_start.pop(0)(self)

    def _started(self, offset: int) -> bool:
        if not self.is_running():
            raise ServerStartError(
                f"PostgreSQL {self.name} exited while starting (exit code {self.exit_code()})",
                "the server refused its data directory or settings",
                "Read the server log lines below",
                log_lines=self.log.important(offset),
                log_name=f"{self.log.path}",
            )
        assert self.proc is not None
        pid, status = self._pidfile()
        return status in ("ready", "standby") and pid == self.proc.pid

    def pm_pid(self) -> int | None:
        """The PID in postmaster.pid (a stale file from a crash names a dead process)."""
        return self._pidfile()[0]

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, mode: str = "fast", timeout: float | None = None) -> None:
        """Stop the server (``smart``, ``fast`` or ``immediate``) and wait for it to exit."""
        self.close_connections()
        if not self.is_running():
            return
        assert self.proc is not None
        self.host.signal(self.proc, STOP_SIGNALS[mode])
        proc = self.proc
        poll(
            lambda: proc.poll() is not None, f"{self.name} to stop ({mode})", timeout, self.log.tail
        )

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def reload(self) -> None:
        """Write the settings and reload them; returns once this node's sessions see them."""
        self.write_conf()
        before = self.scalar("SELECT pg_conf_load_time()")
        self.scalar("SELECT pg_reload_conf()")
        self.poll_query(
            f"SELECT pg_conf_load_time() > '{before.isoformat()}'::timestamptz",
            f"{self.name} to reload its settings",
        )

    def crash(self) -> None:
        """SIGKILL the postmaster, like a power loss (a container: ``docker kill``).

        Its children (which live in their own sessions) exit as soon as they see it gone.
        """
        self.close_connections()
        if self.proc is None:
            return
        self.host.kill_group(self.proc)
        self.proc.wait()

    def wait_exit(self, what: str, timeout: float | None = None) -> int:
        assert self.proc is not None
        proc = self.proc
        poll(lambda: proc.poll() is not None, what, timeout, self.log.tail)
        code = proc.poll()
        assert code is not None
        return code

    # connections and queries ------------------------------------------------------------
    def conninfo(self, dbname: str = "postgres", user: str | None = None) -> str:
        """A libpq connection string (password left to ``PGPASSFILE``)."""
        user = user or self.credentials.superuser
        return make_conninfo(
            host=self.host.client_address, port=self.port, user=user, dbname=dbname
        )

    def peer_conninfo(self, dbname: str = "postgres", user: str | None = None) -> str:
        """How another server (not the test process) reaches this node."""
        user = user or self.credentials.superuser
        return make_conninfo(
            host=self.host.peer_address(self.name),
            port=self.host.server_port(self.name, self.port),
            user=user,
            dbname=dbname,
        )

    def connect(
        self, dbname: str = "postgres", autocommit: bool = True, **kwargs: Any
    ) -> psycopg.Connection[Any]:
        """A new psycopg connection over TCP; libpq reads the password from the pgpass file,
        so no frame of a failing connect (pytest ``-l``, JUnit XML) holds it."""
        return psycopg.connect(
            self.conninfo(dbname),
            passfile=str(self.credentials.client_passfile),
            autocommit=autocommit,
            **{"connect_timeout": 10, **kwargs},
        )

    def _admin(self, dbname: str) -> psycopg.Connection[Any]:
        conn = self._conns.get(dbname)
        if conn is None or conn.closed:
            conn = self._conns[dbname] = self.connect(dbname)
        return conn

    def query(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        dbname: str = "postgres",
    ) -> list[tuple[Any, ...]]:
        """Run one statement on a cached autocommit connection; rows or []."""
        for attempt in (1, 2):
            conn = self._admin(dbname)
            try:
                cur = conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                self._conns.pop(dbname, None)
                with contextlib.suppress(Exception):
                    conn.close()
                if attempt == 2:
                    raise
        return []

    def scalar(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        dbname: str = "postgres",
    ) -> Any:
        rows = self.query(sql, params, dbname)
        return rows[0][0] if rows else None

    def close_connections(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(Exception):
                conn.close()
        self._conns.clear()

    def try_scalar(self, sql: str, dbname: str = "postgres") -> Any:
        """Like :meth:`scalar`, but None while the server cannot answer yet."""
        try:
            return self.scalar(sql, dbname=dbname)
        except (psycopg.OperationalError, psycopg.errors.CannotConnectNow):
            return None

    def poll_query(
        self, sql: str, what: str, timeout: float | None = None, dbname: str = "postgres"
    ) -> Any:
        """Poll ``sql`` until it returns a truthy value; fail fast if the server dies."""
        offset = self.log.offset()

        def check() -> Any:
            if not self.is_running():
                raise RecoveryError(
                    f"PostgreSQL {self.name} exited (code {self.exit_code()}) while waiting for"
                    f" {what}",
                    "the server stopped by itself",
                    "Read the server log lines below",
                    log_lines=self.log.important(),
                    log_name=str(self.log.path),
                )
            return self.try_scalar(sql, dbname)

        return poll(check, what, timeout, lambda: self.log.tail(offset=max(offset - 4000, 0)))

    # state ------------------------------------------------------------------------------
    def in_recovery(self) -> bool:
        return bool(self.scalar("SELECT pg_is_in_recovery()"))

    def lsn(self, kind: str = "write") -> Lsn:
        """``insert``/``write``/``flush`` on a primary, ``replay``/``receive`` on a standby."""
        text = self.scalar(f"SELECT {LSN_SQL[kind]}")
        if text is None:
            raise RecoveryError(f"{self.name} has no {kind} LSN", "it is not in that role")
        return Lsn.parse(str(text))

    def timeline(self) -> int:
        """The timeline this node writes (primary) or last received/replayed (standby)."""
        if not self.in_recovery():
            return int(self.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")[:8], 16)
        received = self.scalar("SELECT received_tli FROM pg_stat_wal_receiver")
        if received:
            return int(received)
        return int(self.scalar("SELECT timeline_id FROM pg_control_checkpoint()"))

    def system_identifier(self) -> int:
        return int(self.scalar("SELECT system_identifier FROM pg_control_system()"))

    def replay_pause_state(self) -> str:
        if self.inst.major >= 14:
            return str(self.scalar("SELECT pg_get_wal_replay_pause_state()"))
        return "paused" if self.scalar("SELECT pg_is_wal_replay_paused()") else "not paused"

    def switch_wal(self) -> Lsn:
        """Close the current WAL segment so it can be archived; returns the switch LSN."""
        return Lsn.parse(str(self.scalar("SELECT pg_switch_wal()")))

    def wal_segment_size(self) -> int:
        return int(self.scalar("SELECT bytes_per_wal_segment FROM pg_control_init()"))

    def walfile_name(self, lsn: Lsn) -> str:
        return str(self.scalar("SELECT pg_walfile_name(%s::pg_lsn)", [str(lsn)]))

    # client programs --------------------------------------------------------------------
    def tool_env(self) -> dict[str, str]:
        return {
            "PGHOST": self.host.client_address,
            "PGPORT": str(self.port),
            "PGUSER": self.credentials.superuser,
            "PGDATABASE": "postgres",
            "PGPASSFILE": str(self.credentials.passfile),
            "PGCONNECT_TIMEOUT": "10",
        }

    def run_tool(
        self,
        program: str,
        *args: str | Path,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run one of the installation's programs against this node, as the server user.

        A failure, or running past ``timeout`` (default: twice the wait deadline), raises
        :class:`ToolError` with the command and its output.
        """
        argv = [str(self.inst.tool(program)), *map(str, args)]
        started = time.monotonic()
        limit = timeout if timeout is not None else 2 * DEFAULT_TIMEOUT * timeout_scale()
        try:
            proc = self.host.run(argv, {**self.tool_env(), **(env or {})}, input, limit)
        except subprocess.TimeoutExpired as exc:
            raise ToolError(
                f"{program} did not finish within {limit:.0f} s against {self.name}",
                f"command: {shlex.join(argv)}; it may be waiting on a lock or a server",
                "Read the server log below; pass timeout= for long runs",
                log_lines=self.log.tail(15),
                log_name=str(self.log.path),
            ) from exc
        if check and proc.returncode != 0:
            raise ToolError(
                f"{program} failed with exit code {proc.returncode} after"
                f" {time.monotonic() - started:.2f} s against {self.name}",
                f"command: {shlex.join(argv)}",
                "Read its output below",
                log_lines=(proc.stderr or proc.stdout).strip().splitlines()[-20:],
                log_name=f"{program} output",
            )
        return proc

    def psql(self, sql: str, dbname: str = "postgres", *args: str, socket: bool = False) -> str:
        """Run SQL through psql (stops at the first error); returns its output. With
        ``socket``, over the node's private socket (no network, no password)."""
        port = str(self.host.server_port(self.name, self.port))
        env = {"PGHOST": str(self.sockdir), "PGPORT": port} if socket else None
        proc = self.run_tool(
            "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbname, *args, input=sql, env=env
        )
        return proc.stdout
