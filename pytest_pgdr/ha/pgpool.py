"""pgpool-II in front of every node (the ``pgpool`` client path), streaming-replication mode.

Generated ``pgpool.conf``, ``pool_hba.conf`` (the servers' rules: SCRAM over TCP),
``pool_passwd`` (the
topology's generated superuser password, which pgpool needs to log in to SCRAM servers; 0600,
server user), an empty ``pcp.conf`` and a ``failover.sh``. Health checks every second with no
retries; on a dead primary pgpool runs ``failover.sh``, which promotes the standby pgpool chose
(``SELECT pg_promote()`` over the network, so it works wherever the servers run), then sends
writes there. Reads are load balanced: ``backend_weight`` 0 on the primary sends every
read-only ``SELECT`` of a session to a standby. pgpool runs as the server user, its sockets,
pid file and status file in its own directory.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.credentials import Secret
from pytest_pgdr.ha.pooler import Daemon, backend_address, require_program, single_line

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology

SETTINGS: dict[str, object] = {
    "backend_clustering_mode": "streaming_replication",
    "num_init_children": 8,
    "max_pool": 1,
    "load_balance_mode": True,
    "statement_level_load_balance": False,
    "health_check_period": 1,
    "health_check_timeout": 2,
    "health_check_max_retries": 0,
    "health_check_retry_delay": 1,
    "connect_timeout": 2000,
    "sr_check_period": 1,
    "failover_on_backend_error": True,
    "search_primary_node_timeout": 30,
    "use_watchdog": False,
    "memory_cache_enabled": False,
    "enable_pool_hba": True,
    "allow_clear_text_frontend_auth": False,
    "pcp_listen_addresses": "",
    "log_destination": "stderr",
    "log_line_prefix": "%m: pid %p: ",
    "log_min_messages": "warning",
}
FAILOVER_SH = """#!/bin/sh
# written by pytest-pgdr: pgpool's failover_command (%d %P %m %H %r)
failed="$1"; old_primary="$2"; new_main="$3"; new_host="$4"; new_port="$5"
echo "$(date -u +%FT%T.%NZ) node $failed failed (primary: $old_primary), new main $new_main"
[ "$failed" = "$old_primary" ] || exit 0  # a standby failed: nothing to promote
[ "$new_main" -ge 0 ] 2>/dev/null || exit 1
exec {psql} -X -qAt -h "$new_host" -p "$new_port" -U {user} -d postgres \\
  -c "SELECT pg_promote(true, 60)"
"""


def conf_value(value: object) -> str:
    """A ``pgpool.conf`` value: numbers and booleans bare, strings single-quoted with
    ``''`` and ``\\\\`` escaped (its lexer is PostgreSQL's)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    text = single_line(str(value), "pgpool setting")
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def render_conf(settings: Mapping[str, object]) -> str:
    lines = [f"{key} = {conf_value(value)}\n" for key, value in settings.items()]
    return "# written by pytest-pgdr\n" + "".join(lines)


def backend_settings(nodes: Sequence[tuple[str, int, str]]) -> dict[str, object]:
    """``backend_*N`` for (address, port, name) of each node, the primary first (weight 0:
    reads go to the standbys)."""
    out: dict[str, object] = {}
    for i, (address, port, name) in enumerate(nodes):
        out[f"backend_hostname{i}"] = address
        out[f"backend_port{i}"] = port
        out[f"backend_weight{i}"] = 0 if i == 0 and len(nodes) > 1 else 1
        out[f"backend_flag{i}"] = "ALLOW_TO_FAILOVER"
        out[f"backend_application_name{i}"] = name
    return out


def pool_hba(server_hba: str) -> str:
    """pgpool's ``pool_hba.conf``: the servers' own rules (private socket trusted, SCRAM
    from the loopback or the topology's private network), replication lines left out."""
    rules = [
        line
        for line in server_hba.splitlines()
        if line.split()[:1] in (["local"], ["host"]) and line.split()[1:2] != ["replication"]
    ]
    return "# written by pytest-pgdr\n" + "".join(f"{line}\n" for line in rules)


def pool_passwd_line(user: str, password: str) -> Secret:
    """``user:TEXTpassword`` (pgpool's clear-text form); a user name may not hold ':'."""
    if ":" in user:
        raise ConfigError(
            f"pgpool cannot hold the user name {user!r} in pool_passwd",
            "its lines are user:password, split at the first ':'",
            "Use a user name without ':'",
        )
    return Secret(f"{single_line(user, 'user name')}:TEXT{single_line(password, 'password')}\n")


class PgPool:
    """pgpool-II over the topology's nodes; it fails over by itself."""

    name = "pgpool"
    follows_failover = True
    promotes = True  # its failover_command promotes a standby: the drill must not

    def __init__(
        self, topology: Topology, nodes: Sequence[Node], dbnames: Sequence[str] = ()
    ) -> None:
        self.program = require_program("pgpool")
        self.topology = topology
        self.nodes = list(nodes)
        self.daemon = Daemon(topology, "pgpool")
        self.pcp_port = topology.host.run_dir.claim_port()
        self.files = {
            name: self.daemon.dir / name
            for name in ("pgpool.conf", "pool_hba.conf", "pool_passwd", "pcp.conf", "failover.sh")
        }

    def conninfo(self, dbname: str = "postgres") -> str:
        return self.daemon.conninfo(dbname)

    def settings(self) -> dict[str, object]:
        creds, d = self.topology.credentials, self.daemon
        user = creds.superuser
        failover = f"{shlex.quote(str(self.files['failover.sh']))} %d %P %m %H %r"
        return {
            "listen_addresses": d.host.listen_addresses(),
            "port": d.listen_port,
            "unix_socket_directories": str(d.dir),
            "pcp_port": self.pcp_port,
            "pcp_socket_dir": str(d.dir),
            "pid_file_name": str(d.dir / "pgpool.pid"),
            "logdir": str(d.dir),
            "pool_passwd": str(self.files["pool_passwd"]),
            **SETTINGS,
            **{
                f"{kind}_{key}": value
                for kind in ("sr_check", "health_check")
                for key, value in (("user", user), ("password", ""), ("database", "postgres"))
            },
            "failover_command": failover + f" >> {shlex.quote(str(d.dir / 'failover.log'))} 2>&1",
            **backend_settings([(*backend_address(n), n.name) for n in self.nodes]),
        }

    def write_config(self) -> None:
        creds, host = self.topology.credentials, self.daemon.host
        psql = shlex.quote(str(self.topology.inst.tool("psql")))
        script = FAILOVER_SH.replace("{psql}", psql).replace("{user}", shlex.quote(creds.superuser))
        script = _with_passfile(script, str(creds.passfile))
        host.write_file(self.files["failover.sh"], script, mode=0o700)
        host.write_file(
            self.files["pool_passwd"], pool_passwd_line(creds.superuser, creds.password)
        )
        host.write_file(self.files["pool_hba.conf"], pool_hba(host.hba_lines()))
        host.write_file(self.files["pcp.conf"], "# no pcp users\n")
        host.write_file(self.files["pgpool.conf"], render_conf(self.settings()))

    def start(self) -> None:
        self.write_config()
        f = self.files
        argv = [self.program, "-n", "-f", f["pgpool.conf"], "-a", f["pool_hba.conf"]]
        self.daemon.spawn([*map(str, argv), "-F", str(f["pcp.conf"])])
        self.daemon.wait_ready(lambda: self.show("SHOW pool_version"))
        self.wait_primary(self.nodes[0])

    def show(self, command: str) -> list[dict[str, str]]:
        """A pgpool ``SHOW`` command (simple query protocol), rows as column -> text."""
        with self.daemon.connect() as conn:
            return simple_rows(conn, command)

    def pool_nodes(self) -> dict[str, dict[str, str]]:
        """``SHOW pool_nodes`` by node name (role, status, select_cnt, ...)."""
        names = {(a, str(p)): n.name for n in self.nodes for a, p in [backend_address(n)]}
        return {
            names.get((r["hostname"], r["port"]), r["node_id"]): r
            for r in self.show("SHOW pool_nodes")
        }

    def wait_primary(self, node: Node, timeout: float | None = None) -> None:
        """Until pgpool sees ``node`` up as its primary."""

        def seen() -> bool:
            try:
                row = self.pool_nodes().get(node.name, {})
            except psycopg.Error:  # refused while it fails over
                return False
            return row.get("role") == "primary" and row.get("status") in ("up", "waiting")

        poll(seen, f"pgpool to see {node.name} as its primary", timeout, self.log_lines)

    def repoint(self, primary: Node) -> None:
        """pgpool follows by itself: wait until it sends writes to ``primary``."""
        self.wait_primary(primary)

    def log_lines(self) -> list[str]:
        lines = self.daemon.log_tail(20)
        failover = self.daemon.dir / "failover.log"
        if failover.exists():
            lines += failover.read_text(errors="replace").splitlines()[-5:]
        return lines

    def close(self) -> None:
        self.daemon.close()
        if self.pcp_port:
            self.topology.host.run_dir.release_port(self.pcp_port)
            self.pcp_port = 0

    def describe(self) -> str:
        rows = self.show("SHOW pool_version") if self.daemon.running() else []
        return f"pgpool-II {rows[0]['pool_version']}" if rows else "pgpool-II"


def _with_passfile(script: str, passfile: str) -> str:
    """The failover script with ``PGPASSFILE`` set after its first two lines."""
    head, comment, rest = script.split("\n", 2)
    return f"{head}\n{comment}\nexport PGPASSFILE={shlex.quote(passfile)}\n{rest}"


def simple_rows(conn: Any, command: str) -> list[dict[str, str]]:
    """Rows of one command sent with the simple query protocol (poolers' own commands)."""
    result = conn.pgconn.exec_(command.encode())
    names = [(result.fname(c) or b"").decode() for c in range(result.nfields)]
    return [
        {
            names[c]: (result.get_value(r, c) or b"").decode(errors="replace")
            for c in range(result.nfields)
        }
        for r in range(result.ntuples)
    ]
