"""The bookkeeping every part of a topology shares: naming, node creation, common settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.basics.errors import ConfigError, VersionSkip
from pytest_pgdr.basics.paths import write_private
from pytest_pgdr.cluster.archive import Archive
from pytest_pgdr.cluster.credentials import Credentials
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.hosts.install import Installation

if TYPE_CHECKING:
    from pytest_pgdr.hosts.base import Host

# settings that say where a node stands, never copied from the node a backup came from
NODE_OWN = ("recovery_", "primary_conninfo", "primary_slot_name", "synchronous_standby_names")
NAME_RX = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class TopologyBase:
    """The nodes, archive and backups of one drill, all on one installation.

    Nodes start from a cached template data directory, each primary with its own system
    identifier. ``close()`` stops every server and removes every directory.
    """

    def __init__(
        self,
        inst: Installation,
        host: Host,
        root: Path,
        cache_dir: Path,
        fsync: bool = False,
        settings: Mapping[str, object] | None = None,
    ) -> None:
        self.inst = inst
        self.host = host
        self.root = host.make_dir(root, 0o711)
        self.cache_dir = cache_dir
        self.fsync = fsync
        self.extra_settings = dict(settings or {})
        local = host.run_dir.path / f".{root.name}.pgpass"  # the harness's own connections
        self.credentials = Credentials.generate(self.root / "pgpass", local)
        host.write_file(self.credentials.passfile, self.credentials.pgpass())
        write_private(local, self.credentials.pgpass())
        self.nodes: dict[str, Node] = {}
        self._archive: Archive | None = None
        self._counters: dict[str, int] = {}
        self._archive_at_start: dict[str, list[str]] = {}  # per "latest" restore
        self._stream_from: dict[str, tuple[str, int]] = {}  # standby: (upstream, log offset)

    @property
    def major(self) -> int:
        return self.inst.major

    def require(self, major: int, feature: str) -> None:
        """Raise :class:`VersionSkip` when the installation is older than ``major``."""
        if self.inst.major < major:
            raise VersionSkip(
                f"{feature} needs PostgreSQL {major} or newer",
                f"this drill runs on {self.inst.describe()}",
            )

    @property
    def archive(self) -> Archive:
        if self._archive is None:
            self._archive = Archive(self.root / "archive", self.host)
        return self._archive

    def _name(self, prefix: str, name: str | None) -> str:
        if name is None:
            self._counters[prefix] = self._counters.get(prefix, 0) + 1
            name = f"{prefix}{self._counters[prefix]}"
        if not NAME_RX.match(name):
            raise ConfigError(
                f"Bad node name {name!r}",
                "names are lowercase letters, digits and _, up to 31 characters",
            )
        if name in self.nodes:
            raise ConfigError(f"This topology already has a node named {name!r}")
        return name

    def new_node(self, role: str, name: str | None = None) -> Node:
        """A node of this topology with its directories and port, not yet initialized: the
        family members (backup tools, backup sources) lay their files into ``datadir``.
        ``name`` defaults to ``role`` and a number (``restore3``)."""
        return self._new_node(self._name(role, name))

    def _new_node(self, name: str) -> Node:
        root = self.host.make_dir(self.root / name)
        self.host.make_dir(root / "sock")
        node = Node(
            name, self.inst, self.host, root, self.host.run_dir.claim_port(), self.credentials
        )
        node.conf.update(self.common_settings())
        self.nodes[name] = node
        return node

    def inherited(self, source: Node | None) -> dict[str, object]:
        """The settings a copy of ``source``'s data directory carries, as a real
        pg_basebackup copies postgresql.conf: everything but where the source stood in
        replication and recovery (which the new node gets for itself)."""
        if source is None:
            return {}
        return {k: v for k, v in source.conf.items() if not k.startswith(NODE_OWN)}

    def common_settings(self) -> dict[str, object]:
        settings: dict[str, object] = {
            "fsync": self.fsync,
            "shared_buffers": "32MB",
            "max_connections": 50,
            "wal_level": "replica",
            "max_wal_senders": 10,
            "max_replication_slots": 10,
            "wal_log_hints": True,
            "hot_standby": True,
            "wal_keep_size": "256MB",
            "max_wal_size": "1GB",
            "wal_retrieve_retry_interval": "100ms",
        }
        settings.update(self.extra_settings)
        return settings

    def archive_settings(self) -> dict[str, object]:
        return {
            "archive_mode": "on",
            "archive_command": self.archive.archive_command(),
            "restore_command": self.archive.restore_command(),
        }

    def _sync_args(self) -> list[str]:
        return [] if self.fsync else ["--no-sync"]
