"""The one place that picks a cluster manager by name; members are imported only when chosen."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.hosts.base import require_local_files

if TYPE_CHECKING:
    from pytest_pgdr.cluster.topology import Topology
    from pytest_pgdr.ha.base import ClusterManager
    from pytest_pgdr.ha.patroni_config import PatroniOptions

# name -> (module under pytest_pgdr.ha, class)
MEMBERS: dict[str, tuple[str, str]] = {
    "plain": ("plain", "Plain"),
    "patroni": ("patroni", "Patroni"),
}
MANAGER_NAMES = tuple(MEMBERS)
# name -> the member that targets a cluster already running elsewhere (REST URLs + a DSN)
EXTERNAL: dict[str, tuple[str, str]] = {"patroni": ("patroni_external", "ExternalPatroni")}


def check_name(name: str) -> str:
    if name not in MEMBERS:
        raise ConfigError(
            f"Unknown cluster manager {name!r}",
            f"valid managers: {', '.join(MANAGER_NAMES)}",
            "Pick one of them",
        )
    return name


def cluster_manager(
    name: str,
    topology: Topology,
    members: int = 3,
    options: PatroniOptions | None = None,
    existing: tuple[list[str], str] | None = None,
) -> ClusterManager:
    """The member called ``name`` on ``topology`` (not started yet: call ``start()``).

    With ``existing`` (REST URLs and a DSN), the member that targets that running cluster
    instead (``members`` and ``options`` are then the cluster's own). Raises
    :class:`~pytest_pgdr.ha.base.ManagerUnavailable` (a skip, or a failure in strict mode)
    when its programs are not installed here."""
    if existing is not None:
        if check_name(name) not in EXTERNAL:
            raise ConfigError(
                f"The {name} cluster manager cannot target an existing cluster",
                f"only {', '.join(EXTERNAL)} can (--pgdr-patroni-url)",
            )
        module, cls = EXTERNAL[name]
        require_local_files(topology.host, f"The {name} cluster manager")
        external = getattr(importlib.import_module(f"pytest_pgdr.ha.{module}"), cls)
        return external(topology, *existing)  # type: ignore[no-any-return]
    module, cls = MEMBERS[check_name(name)]
    require_local_files(topology.host, f"The {name} cluster manager")
    factory: Callable[..., ClusterManager] = getattr(
        importlib.import_module(f"pytest_pgdr.ha.{module}"), cls
    )
    return factory(topology, members, options)


__all__ = ["MANAGER_NAMES", "check_name", "cluster_manager"]
