"""Patroni's per-node configuration, generated (JSON, which YAML reads as it is).

The timings are small so a drill takes seconds: the leader lock lives ``ttl`` seconds in etcd,
Patroni's loop runs every ``loop_wait`` seconds, and gives up on etcd or PostgreSQL after
``retry_timeout`` (Patroni requires ``loop_wait + 2 * retry_timeout <= ttl``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pgdr.basics.errors import ConfigError

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node

NAMESPACE = "/pytest-pgdr/"
REST_USER = "pgdr_rest"
NODE_OWN = ("listen_addresses", "port", "cluster_name")  # Patroni sets these itself


@dataclass(frozen=True)
class PatroniOptions:
    """What a Patroni cluster promises: how fast it fails over, and what it keeps."""

    ttl: int = 10
    loop_wait: int = 1
    retry_timeout: int = 4
    synchronous_mode: bool = False
    #: how many replicas confirm each commit in synchronous mode (None: every replica, so
    #: Patroni never swaps one sync standby for another, a swap during which its sync key
    #: names no standby and no replica may be promoted)
    synchronous_node_count: int | None = None
    failsafe_mode: bool = False
    use_pg_rewind: bool = True
    maximum_lag_on_failover: int = 1024 * 1024

    def __post_init__(self) -> None:
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            raise ConfigError(
                f"Patroni timings ttl={self.ttl}, loop_wait={self.loop_wait},"
                f" retry_timeout={self.retry_timeout} do not fit",
                "Patroni needs loop_wait + 2 * retry_timeout <= ttl",
                "Raise ttl or lower retry_timeout",
            )

    def dcs(self, parameters: dict[str, object]) -> dict[str, Any]:
        """``bootstrap.dcs``: the cluster-wide settings written to etcd at bootstrap."""
        return {
            "ttl": self.ttl,
            "loop_wait": self.loop_wait,
            "retry_timeout": self.retry_timeout,
            "maximum_lag_on_failover": self.maximum_lag_on_failover,
            "synchronous_mode": self.synchronous_mode,
            "synchronous_node_count": self.synchronous_node_count or 1,
            "failsafe_mode": self.failsafe_mode,
            "postgresql": {
                "use_pg_rewind": self.use_pg_rewind,
                "use_slots": True,
                "parameters": parameters,
            },
        }


def pg_value(value: object) -> object:
    """A setting as Patroni passes it on (booleans as on/off)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def hba(lines: str) -> list[str]:
    return [line.strip() for line in lines.splitlines() if line.strip() and line[0] != "#"]


def node_config(
    scope: str,
    node: Node,
    rest: tuple[str, str],
    etcd_hosts: list[str],
    options: PatroniOptions,
    cluster_settings: dict[str, object],
    rest_password: str,
) -> str:
    """The configuration file of ``node`` (its passwords are the topology's); ``rest`` is where
    its REST API listens and how the others reach it (``host:port`` each)."""
    creds = node.credentials
    superuser = {"username": creds.superuser, "password": str(creds.password)}
    replication = {"username": creds.replication_user, "password": str(creds.replication_password)}
    port = node.host.server_port(node.name, node.port)
    listen = f"{node.host.listen_addresses()}:{port}"
    address = f"{node.host.peer_address(node.name)}:{port}"
    local = {k: v for k, v in node.base_settings().items() if k not in NODE_OWN}
    shared = {k: pg_value(v) for k, v in cluster_settings.items() if k not in NODE_OWN}
    config: dict[str, Any] = {
        "scope": scope,
        "namespace": NAMESPACE,
        "name": node.name,
        "log": {"level": "INFO", "format": "%(asctime)s patroni %(levelname)s: %(message)s"},
        "restapi": {
            "listen": rest[0],
            "connect_address": rest[1],
            "authentication": {"username": REST_USER, "password": rest_password},
        },
        "etcd3": {"hosts": etcd_hosts},
        "bootstrap": {
            "dcs": options.dcs(shared),
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, {"auth-local": "trust"}],
        },
        "postgresql": {
            "listen": listen,
            "connect_address": address,
            "data_dir": str(node.datadir),
            "bin_dir": str(node.inst.bindir),
            "pgpass": str(node.root / "patroni.pgpass"),
            "authentication": {
                "superuser": superuser,
                "replication": replication,
                "rewind": superuser,
            },
            "parameters": {k: pg_value(v) for k, v in local.items()},
            "pg_hba": hba(node.host.hba_lines()),
        },
        "watchdog": {"mode": "off"},
    }
    return json.dumps(config, indent=1) + "\n"


def config_path(node: Node) -> Path:
    return node.root / "patroni.yml"
