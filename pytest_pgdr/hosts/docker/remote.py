"""The Docker backend on an engine that does not share this machine's disk (a remote engine).

The topology's root directory and its archive are Docker volumes, mounted at the same paths
in every container; the harness reaches them through the toolbox (:mod:`.volume`) and the
servers through ports the engine publishes on its own address. Which kind of Docker host a
topology gets is decided once, here (:func:`docker_host`).
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from pytest_pgdr.hosts.base import FREEZE, PARTITION, WAL_LIMIT
from pytest_pgdr.hosts.docker.engine import DockerError, _short, engine_host
from pytest_pgdr.hosts.docker.host import DockerHost
from pytest_pgdr.hosts.docker.labels import owner_labels
from pytest_pgdr.hosts.docker.volume import VolumeFiles
from pytest_pgdr.hosts.osuser import OsUser
from pytest_pgdr.hosts.rundir import RunDir
from pytest_pgdr.hosts.sweep import RUN_PREFIX

STORAGES = ("auto", "bind", "volume")


class VolumeDockerHost(VolumeFiles, DockerHost):
    """A Docker host whose files live in the engine's volumes (see the module docstring)."""

    capabilities = frozenset({FREEZE, PARTITION, WAL_LIMIT})  # not LOCAL_FILES

    def __init__(
        self, user: OsUser, run: RunDir, image: str, root: Path, label: str, address: str
    ) -> None:
        self.client_address = address
        super().__init__(user, run, image, root, label)

    @property
    def volumes(self) -> dict[Path, str]:
        """The topology's own volumes by mount point (removed with it)."""
        return {self.root: f"{self.prefix}-root", self.root / "archive": f"{self.prefix}-archive"}

    @property
    def cache(self) -> tuple[Path, str]:
        """The run's template cache: one volume per run and engine, kept across topologies."""
        run_id = self.run_dir.path.name.removeprefix(RUN_PREFIX)
        return self.run_dir.path / "engine-cache", f"pgdr-{run_id}-cache"

    def cache_home(self, default: Path) -> Path:
        return self.cache[0]

    def _prepare_root(self) -> None:
        import docker.errors

        run_labels = owner_labels(self.run_dir)  # the cache outlives this topology
        wanted = [(n, self.labels) for n in self.volumes.values()] + [(self.cache[1], run_labels)]
        for name, labels in wanted:
            try:
                self.api.create_volume(name, labels=labels)
            except docker.errors.APIError as exc:
                raise DockerError(
                    f"Docker could not create the volume {name}", _short(exc), "Check 'docker info'"
                ) from None

    def _mounts(self) -> list[tuple[str, str, str]]:
        mounts = {**self.volumes, self.cache[0]: self.cache[1]}
        return [(name, str(path), "rw") for path, name in mounts.items()]

    def _check_root(self) -> None:
        """A new volume's mount point belongs to root: give it to the server user."""
        paths = [str(p) for p in self.volumes] + [str(self.cache[0])]
        script = f'chown {self.user.uid}:{self.user.gid} "$@" && chmod 711 "$1"'
        exec_id = self.api.exec_create(
            self.toolbox_id, ["sh", "-c", script, "sh", *paths], user="0"
        )
        output = self.api.exec_start(exec_id["Id"])
        if self.api.exec_inspect(exec_id["Id"]).get("ExitCode"):
            raise DockerError(
                "Cannot prepare the topology's volumes",
                output.decode(errors="replace").strip()[:300],
                "Check 'docker info'",
            )


def docker_host(
    user: OsUser, run: RunDir, image: str, root: Path, label: str, storage: str, address: str
) -> DockerHost:
    """The Docker host of one topology: this machine's files bind-mounted, or volumes.

    ``storage`` "auto" picks volumes when ``DOCKER_HOST`` names another machine (tcp://,
    ssh://); ``address`` "auto" is that machine's address, else 127.0.0.1.
    """
    if storage == "auto":
        storage = "volume" if engine_host() else "bind"
    if storage == "bind":
        root.mkdir(mode=0o711, exist_ok=True)
        return DockerHost(user, run, image, root, label)
    where = engine_address(address)
    return VolumeDockerHost(user, run, image, root, label, where)


def engine_address(given: str) -> str:
    """Where the engine publishes server ports: loopback or a private address, never public."""
    name = (engine_host() or "127.0.0.1") if given == "auto" else given
    try:
        address = ipaddress.ip_address(socket.gethostbyname(name))
    except (OSError, ValueError) as exc:
        raise DockerError(
            f"Cannot resolve the Docker engine's address {name!r}",
            str(exc),
            "Set --pgdr-docker-address to the engine's IP address",
        ) from None
    if not (address.is_loopback or address.is_private):
        raise DockerError(
            f"The Docker engine's address {address} is public",
            "servers publish their ports there, reachable by anyone on that network",
            "Reach the engine over a private network or a tunnel, and set"
            " --pgdr-docker-address to that address",
        )
    return str(address)
