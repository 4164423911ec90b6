"""Topology: builds and tears down the nodes of one drill (primary, backups, replicas, restores).

The parts live in their own modules: bookkeeping (``topology_base``), backups and archive waits
(``backups``), replicas and promotion (``replicas``), standbys rebuilt in place
(``rebuild``), point-in-time recovery (``pitr``).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_pgdr.cluster.credentials import REPLICATION_USER, scram_verifier
from pytest_pgdr.cluster.node import Node
from pytest_pgdr.cluster.pgcontrol import new_system_identifier, set_system_identifier
from pytest_pgdr.cluster.pitr import PointInTime
from pytest_pgdr.cluster.rebuild import Rebuilds
from pytest_pgdr.cluster.template import SUPERUSER, ensure_template

# Run first by every Topology.close(): a layer above (faults) registers what must be undone
# before servers can stop (a frozen or cut-off server cannot).
CLOSE_HOOKS: list[Callable[[], object]] = []


class Topology(Rebuilds, PointInTime):
    """The nodes, archive and backups of one drill, all on one installation.

    Nodes start from a cached template data directory, each primary with its own system
    identifier. ``close()`` stops every server and removes every directory.
    """

    def primary(
        self,
        name: str = "primary",
        archive: bool = True,
        settings: Mapping[str, object] | None = None,
        start: bool = True,
        wal_limit: str | None = None,
    ) -> Node:
        """A new, independent primary (its own system identifier), archiving if asked.

        ``wal_limit`` (e.g. ``"96m"``) puts its ``pg_wal`` on a file system of that size, for
        ``faults.disk_full`` (Docker backend; ``FaultUnsupported`` on the local one).
        """
        node = self._new_node(self._name("primary", name))
        template = ensure_template(self.inst, self.host, self.cache_dir, scratch=self.root)
        self.host.remove_tree(node.datadir)
        self.host.copy_tree(template, node.datadir)
        set_system_identifier(self.host, node.datadir, new_system_identifier())
        if wal_limit is not None:
            self.host.limit_wal(node.name, node.datadir, wal_limit)
        if archive:
            node.conf.update(self.archive_settings())
        node.conf.update(settings or {})
        node.after_first_start.append(self._bootstrap_credentials)  # now, or at node.start()
        if start:
            node.start()
        return node

    def _bootstrap_credentials(self, node: Node) -> None:
        """Give the superuser and the replication role their generated passwords.

        Sent as SCRAM verifiers through psql on the private socket (wherever the server
        runs): no password ever reaches the server, a command line or a log.
        """
        creds = self.credentials
        sql = (
            f"ALTER ROLE {SUPERUSER} PASSWORD '{scram_verifier(str(creds.password))}';\n"
            f"CREATE ROLE {REPLICATION_USER} REPLICATION LOGIN PASSWORD"
            f" '{scram_verifier(str(creds.replication_password))}';\n"
        )
        node.psql(sql, "postgres", "-U", SUPERUSER, socket=True)

    def close(self, keep_to: Path | None = None) -> None:
        """Stop every server; remove the directories (or move them to ``keep_to``)."""
        for hook in CLOSE_HOOKS:
            hook()
        for node in self.nodes.values():
            node.close_connections()
            if node.proc is not None and node.is_running():
                self.host.signal(node.proc, signal.SIGQUIT)
        for node in self.nodes.values():
            if node.proc is not None:
                self.host.reap(node.proc)
            self.host.run_dir.release_port(node.port)
        if keep_to is not None:
            with contextlib.suppress(OSError):
                self.host.export_tree(self.root, keep_to)
        self.host.remove_tree(self.root)
        self.host.close()
        if self.credentials.local_passfile is not None:
            self.credentials.local_passfile.unlink(missing_ok=True)

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
