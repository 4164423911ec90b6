"""The HA stack around the servers: cluster managers (Patroni + etcd) and the client paths
(libpq multi-host, pgbouncer, pgpool-II) the application reaches the primary through.

Cluster managers sit behind one small interface (:class:`ClusterManager`), chosen by name in
:func:`cluster_manager`: ``plain`` (the topology's primary and streaming replicas) and
``patroni`` (Patroni nodes electing their leader in etcd).

Nothing outside this package asks which member it has: drills check ``manager.capabilities``.
"""

from pytest_pgdr.ha.base import (
    AUTO_FAILOVER,
    DCS,
    REJOIN,
    ClusterManager,
    DcsControl,
    ManagerError,
    ManagerUnavailable,
)
from pytest_pgdr.ha.registry import MANAGER_NAMES, cluster_manager

__all__ = [
    "AUTO_FAILOVER",
    "DCS",
    "MANAGER_NAMES",
    "REJOIN",
    "ClusterManager",
    "DcsControl",
    "ManagerError",
    "ManagerUnavailable",
    "cluster_manager",
]
