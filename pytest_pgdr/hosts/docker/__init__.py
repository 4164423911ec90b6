"""The docker backend: a topology's servers in containers (see :mod:`.host`).

Docker and testcontainers are imported lazily: the package imports without them.
"""

from pytest_pgdr.hosts.docker.engine import (
    API_TIMEOUT,
    DEFAULT_SOCKET,
    PING_TIMEOUT,
    DockerError,
    docker_client,
    docker_configured,
    docker_host_text,
    docker_status,
)
from pytest_pgdr.hosts.docker.host import SHM_SIZE, DockerHost
from pytest_pgdr.hosts.docker.labels import (
    LABEL_BINDIR,
    LABEL_HOST,
    LABEL_MACHINE,
    LABEL_NODE,
    LABEL_OWNER,
    LABEL_OWNER_START,
    LABEL_ROLE,
    LABEL_RUN,
    LABEL_RUNDIR,
    is_orphaned,
    owner_labels,
    remove_run_containers,
    sweep_docker_leftovers,
    sweep_docker_orphans,
)
from pytest_pgdr.hosts.docker.probe import (
    BUILD_HINT,
    PROBE_SCRIPT,
    PROBE_TIMEOUT,
    ImageFacts,
    image_installation,
    image_user,
    probe_image,
)
from pytest_pgdr.hosts.docker.process import LONG_WAIT, SERVER_PORT, ContainerProcess, container_of
from pytest_pgdr.hosts.docker.remote import VolumeDockerHost, docker_host
from pytest_pgdr.hosts.docker.wal import (
    FULL_SLACK,
    WAL_FILLER,
    WAL_FS,
    WAL_SIZE_RX,
    WalLimit,
)

__all__ = [
    "VolumeDockerHost",
    "docker_host",
    "API_TIMEOUT",
    "BUILD_HINT",
    "DEFAULT_SOCKET",
    "FULL_SLACK",
    "LABEL_BINDIR",
    "LABEL_HOST",
    "LABEL_MACHINE",
    "LABEL_NODE",
    "LABEL_OWNER",
    "LABEL_OWNER_START",
    "LABEL_ROLE",
    "LABEL_RUN",
    "LABEL_RUNDIR",
    "LONG_WAIT",
    "PING_TIMEOUT",
    "PROBE_SCRIPT",
    "PROBE_TIMEOUT",
    "SERVER_PORT",
    "SHM_SIZE",
    "WAL_FILLER",
    "WAL_FS",
    "WAL_SIZE_RX",
    "ContainerProcess",
    "DockerError",
    "DockerHost",
    "ImageFacts",
    "WalLimit",
    "container_of",
    "docker_client",
    "docker_configured",
    "docker_host_text",
    "docker_status",
    "image_installation",
    "image_user",
    "is_orphaned",
    "owner_labels",
    "probe_image",
    "remove_run_containers",
    "sweep_docker_leftovers",
    "sweep_docker_orphans",
]
