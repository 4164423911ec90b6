"""pgbouncer in front of the primary (the ``pgbouncer`` client path).

Generated ``pgbouncer.ini`` and ``userlist.txt`` (0600, server user): clients authenticate with
SCRAM against the userlist, which holds the topology's generated superuser password (pgbouncer
needs it to log in to the servers with SCRAM); session pooling, loopback (or the topology's
private network) only, no Unix socket. pgbouncer does not notice a failover:
:meth:`PgBouncer.repoint` rewrites the ``[databases]`` entries for the new primary and sends
``RELOAD`` on the admin console, which returns once the new file is in force.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pytest_pgdr.basics.errors import ConfigError, PgdrError
from pytest_pgdr.cluster.credentials import Secret
from pytest_pgdr.ha.pooler import Daemon, backend_address, require_program, single_line

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology

ADMIN_DB = "pgbouncer"
ALIAS_PREFIX = "pgdr_db"
PLAIN_KEY = re.compile(r"^(?!pgdr_db[0-9])[A-Za-z0-9_.-]{1,63}$")
# short waits, so a client sees a dead or moved server within seconds, not pgbouncer's
# defaults (15 s between login retries, 120 s in the queue)
SETTINGS: dict[str, str] = {
    "pool_mode": "session",
    "max_client_conn": "100",
    "default_pool_size": "10",
    "server_connect_timeout": "2",
    "server_login_retry": "0.1",
    "query_wait_timeout": "5",
    "server_check_delay": "0",
    "unix_socket_dir": "",
}


class PgBouncerError(PgdrError):
    """pgbouncer refused a command on its admin console."""


def aliases(dbnames: Sequence[str]) -> dict[str, str]:
    """The ``[databases]`` key of each database. pgbouncer 1.18 reads only plain keys
    (letters, digits, ``_.-``; no quoting): any other name gets an alias ``pgdr_dbN``, and
    clients connect to the alias (the real name travels quoted in the connection string)."""
    out: dict[str, str] = {}
    for name in dict.fromkeys(dbnames):
        plain = PLAIN_KEY.match(name) and name.lower() not in (ADMIN_DB, ALIAS_PREFIX)
        out[name] = name if plain else f"{ALIAS_PREFIX}{len(out) + 1}"
    return out


def connstr_value(value: str) -> str:
    """A value inside a ``[databases]`` connection string: single quotes, ``''`` inside."""
    return "'" + single_line(value, "connection value").replace("'", "''") + "'"


def userlist_line(user: str, password: str) -> Secret:
    """``"user" "password"`` with ``""`` for a double quote (a Secret: masked in reprs)."""
    user_q = single_line(user, "user name").replace('"', '""')
    pw_q = single_line(password, "password").replace('"', '""')
    return Secret(f'"{user_q}" "{pw_q}"\n')


def database_line(key: str, dbname: str, host: str, port: int) -> str:
    conn = f"host={connstr_value(host)} port={port} dbname={connstr_value(dbname)}"
    return f"{key} = {conn}\n"


def render_ini(
    dbnames: Sequence[str],
    backend: tuple[str, int],
    listen: tuple[str, int],
    auth_file: str,
    admin: str,
    settings: Mapping[str, str] = SETTINGS,
) -> str:
    """The whole ``pgbouncer.ini``: one ``[databases]`` entry per name (keyed by
    :func:`aliases`), all on ``backend``."""
    host, port = backend
    lines = ["; written by pytest-pgdr\n", "[databases]\n"]
    lines += [database_line(key, db, host, port) for db, key in aliases(dbnames).items()]
    lines.append("\n[pgbouncer]\n")
    ini = {
        "listen_addr": listen[0],
        "listen_port": str(listen[1]),
        "auth_type": "scram-sha-256",
        "auth_file": auth_file,
        "admin_users": admin,
        **settings,
    }
    lines += [f"{key} = {single_line(value, key)}\n" for key, value in ini.items()]
    return "".join(lines)


class PgBouncer:
    """A pgbouncer process pointing every database at one node."""

    name = "pgbouncer"
    follows_failover = False
    promotes = False

    def __init__(
        self, topology: Topology, nodes: Sequence[Node], dbnames: Sequence[str] = ("postgres",)
    ) -> None:
        self.program = require_program("pgbouncer")
        self.topology = topology
        self.dbnames = list(dict.fromkeys(["postgres", *dbnames]))
        self.daemon = Daemon(topology, "pgbouncer")
        self.target = nodes[0]
        self.ini = self.daemon.dir / "pgbouncer.ini"
        self.userlist = self.daemon.dir / "userlist.txt"
        self.repoints = 0

    def conninfo(self, dbname: str = "postgres") -> str:
        """Through pgbouncer to ``dbname`` (one of the databases it was made for)."""
        key = aliases(self.dbnames).get(dbname)
        if key is None:
            raise ConfigError(
                f"pgbouncer has no entry for database {dbname!r}",
                f"it was set up for {', '.join(map(repr, self.dbnames))}",
                "Pass the database in dbnames when making the client path",
            )
        return self.daemon.conninfo(key)

    def write_config(self) -> None:
        creds = self.topology.credentials
        host = self.daemon.host
        host.write_file(self.userlist, userlist_line(creds.superuser, creds.password))
        text = render_ini(
            self.dbnames,
            backend_address(self.target),
            (host.listen_addresses(), self.daemon.listen_port),
            str(self.userlist),
            creds.superuser,
        )
        host.write_file(self.ini, text)

    def start(self) -> None:
        self.write_config()
        self.daemon.spawn([self.program, str(self.ini)])
        self.daemon.wait_ready(lambda: self.admin("SHOW VERSION"))

    def admin(self, command: str) -> list[tuple[str, ...]]:
        """One command on the admin console (simple query protocol, as it requires)."""
        with self.daemon.connect(ADMIN_DB) as conn:
            result = conn.pgconn.exec_(command.encode())
            if result.error_message:
                raise PgBouncerError(
                    f"pgbouncer refused {command!r}",
                    result.error_message.decode(errors="replace").strip(),
                    "Read its log lines below",
                    log_lines=self.daemon.log_tail(),
                    log_name="pgbouncer log",
                )
            return [
                tuple(
                    (result.get_value(r, c) or b"").decode(errors="replace")
                    for c in range(result.nfields)
                )
                for r in range(result.ntuples)
            ]

    def repoint(self, primary: Node) -> None:
        """Rewrite ``[databases]`` for ``primary`` and RELOAD (returns once in force)."""
        self.target = primary
        self.write_config()
        self.admin("RELOAD")
        self.repoints += 1

    def databases(self) -> dict[str, tuple[str, str]]:
        """``SHOW DATABASES``: name -> (host, port) as pgbouncer has them now."""
        return {row[0]: (row[1], row[2]) for row in self.admin("SHOW DATABASES")}

    def close(self) -> None:
        self.daemon.close()

    def describe(self) -> str:
        rows = self.admin("SHOW VERSION") if self.daemon.running() else []
        return rows[0][0] if rows else "pgbouncer"
