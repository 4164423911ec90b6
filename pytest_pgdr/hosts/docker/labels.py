"""Labels on every container, network and volume, and the sweep of what dead runs left.

Containers and networks carry labels naming the run directory and the owning process, so
:func:`sweep_docker_orphans` removes what a killed pytest process left (Ryuk is never used:
its image cannot be pulled where there is no registry).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pytest_pgdr.hosts.docker.engine import (
    _ignore_missing,
    docker_client,
    docker_configured,
    docker_status,
)
from pytest_pgdr.hosts.procs import process_start_ticks
from pytest_pgdr.hosts.rundir import RunDir
from pytest_pgdr.hosts.sweep import owner_alive

LABEL_RUN = "org.pytest-pgdr.run"
LABEL_RUNDIR = "org.pytest-pgdr.rundir"
LABEL_OWNER = "org.pytest-pgdr.owner"
LABEL_OWNER_START = "org.pytest-pgdr.owner-start"
LABEL_MACHINE = "org.pytest-pgdr.machine"
LABEL_HOST = "org.pytest-pgdr.host"
LABEL_ROLE = "org.pytest-pgdr.role"
LABEL_NODE = "org.pytest-pgdr.node"
LABEL_BINDIR = "org.pytest-pgdr.bindir"


def owner_labels(run: RunDir | None = None) -> dict[str, str]:
    """Labels that let :func:`sweep_docker_orphans` tell when a container is left over."""
    labels = {
        LABEL_OWNER: str(os.getpid()),
        LABEL_OWNER_START: str(process_start_ticks(os.getpid())),
        LABEL_MACHINE: socket.gethostname(),
    }
    if run is not None:
        labels.update({LABEL_RUN: run.path.name, LABEL_RUNDIR: str(run.path)})
    return labels


def is_orphaned(labels: Mapping[str, str]) -> bool:
    """Left over by a pytest process on this machine that is gone (or whose run dir is)."""
    if labels.get(LABEL_MACHINE, socket.gethostname()) != socket.gethostname():
        return False  # another machine's (a shared engine): not ours to judge
    if labels.get(LABEL_RUNDIR):
        return not owner_alive(Path(labels[LABEL_RUNDIR]) / "owner")
    try:
        pid, ticks = int(labels[LABEL_OWNER]), int(labels[LABEL_OWNER_START])
    except (KeyError, ValueError):
        return False
    return process_start_ticks(pid) != ticks


def _remove_all(
    container_ids: Iterable[str], network_ids: Iterable[str], volume_names: Iterable[str] = ()
) -> None:
    """Force-remove containers in parallel, then the networks and volumes."""
    api = docker_client().api
    ids = list(container_ids)

    def remove(cid: str) -> None:
        _ignore_missing(lambda: api.remove_container(cid, force=True, v=True))

    def remove_network(net: str) -> None:
        _ignore_missing(lambda: api.remove_network(net))

    def remove_volume(name: str) -> None:
        _ignore_missing(lambda: api.remove_volume(name, force=True))

    if ids:
        with ThreadPoolExecutor(max_workers=min(len(ids), 8)) as pool:
            list(pool.map(remove, ids))
    for net in network_ids:
        remove_network(net)
    for volume in volume_names:
        remove_volume(volume)


def _labelled_volumes(selector: str) -> list[dict[str, Any]]:
    found = docker_client().api.volumes(filters={"label": selector}) or {}
    return list(found.get("Volumes") or [])


def _labelled(selector: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    api = docker_client().api
    flt = {"label": selector}
    return api.containers(all=True, filters=flt), api.networks(filters=flt)


def sweep_docker_leftovers() -> list[str]:
    """:func:`sweep_docker_orphans` for a run of any backend: nothing (and no delay) when no
    Docker engine is configured here, and never an error (the run may not need Docker)."""
    if not docker_configured():
        return []
    try:
        return sweep_docker_orphans()
    except Exception:
        return []


def sweep_docker_orphans() -> list[str]:
    """Remove the containers and networks of pytest-pgdr runs whose owner is gone.

    Returns the names removed; quietly nothing when Docker is absent.
    """
    if not docker_status()[0]:
        return []
    containers, networks = _labelled(LABEL_OWNER)
    dead_c = [c for c in containers if is_orphaned(c.get("Labels") or {})]
    dead_n = [n for n in networks if is_orphaned(n.get("Labels") or {})]
    dead_v = [v for v in _labelled_volumes(LABEL_OWNER) if is_orphaned(v.get("Labels") or {})]
    _remove_all([c["Id"] for c in dead_c], [n["Id"] for n in dead_n], [v["Name"] for v in dead_v])
    return (
        [c["Names"][0].lstrip("/") for c in dead_c]
        + [n["Name"] for n in dead_n]
        + [v["Name"] for v in dead_v]
    )


def _probes_of(run_dir: Path) -> list[dict[str, Any]]:
    """The image-probe containers of the process that owns ``run_dir`` (they carry no run)."""
    try:
        pid, ticks = (run_dir / "owner").read_text().split()
    except (OSError, ValueError):
        return []
    selector = [f"{LABEL_OWNER}={pid}", f"{LABEL_OWNER_START}={ticks}", f"{LABEL_ROLE}=probe"]
    return list(docker_client().api.containers(all=True, filters={"label": selector}))


def remove_run_containers(run_dir: Path) -> list[str]:
    """Remove every container, network and volume of one run directory (its owner being
    gone), and its owner's image-probe containers."""
    if not docker_status()[0]:
        return []
    containers, networks = _labelled(f"{LABEL_RUNDIR}={run_dir}")
    containers += [p for p in _probes_of(run_dir) if p["Id"] not in {c["Id"] for c in containers}]
    volumes = [v["Name"] for v in _labelled_volumes(f"{LABEL_RUNDIR}={run_dir}")]
    _remove_all([c["Id"] for c in containers], [n["Id"] for n in networks], volumes)
    return [c["Names"][0].lstrip("/") for c in containers] + [n["Name"] for n in networks] + volumes
