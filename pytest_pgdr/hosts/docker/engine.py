"""The Docker engine: reachability, the process's SDK client, error helpers.

Docker and testcontainers are imported lazily: the package imports without them.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pytest_pgdr.basics.errors import PgdrError

PING_TIMEOUT = 2.0
API_TIMEOUT = 120
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class DockerError(PgdrError):
    """Docker is unreachable, or refused an operation on a container or network."""


# the engine -----------------------------------------------------------------------------
def docker_host_text() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else f"DOCKER_HOST unset, so {DEFAULT_SOCKET}"


def engine_host() -> str:
    """The machine named by DOCKER_HOST (tcp:// or ssh://), or '' for a local socket."""
    url = urlsplit(os.environ.get("DOCKER_HOST", ""))
    return (url.hostname or "") if url.scheme in ("tcp", "ssh", "http", "https") else ""


def _ping_client() -> Any:
    import docker

    client = docker.from_env(timeout=PING_TIMEOUT)
    client.ping()
    return client


def docker_configured() -> bool:
    """Whether a Docker engine may be here at all (cheap: no import, no connection)."""
    if os.environ.get("DOCKER_HOST"):
        return True
    return os.path.exists(DEFAULT_SOCKET.removeprefix("unix://"))


def docker_status() -> tuple[bool, str]:
    """Whether a Docker engine answers (within ~2 s), with a reason naming what was tried."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return False, (
            "the Python package 'docker' is not installed (pip install 'pytest-pgdr[docker]')"
        )
    try:
        client = _ping_client()
    except Exception as exc:
        return False, (
            f"docker.from_env().ping() failed with {docker_host_text()}:"
            f" {_short(exc)}. Start the Docker engine or point DOCKER_HOST at one"
        )
    version = client.api.api_version
    client.close()
    return True, f"Docker engine reachable with {docker_host_text()} (API {version})"


@functools.lru_cache(maxsize=1)
def docker_client() -> Any:
    """The process's docker SDK client (raises :class:`DockerError` when Docker is absent)."""
    import docker

    ok, reason = docker_status()
    if not ok:
        raise DockerError("Docker is not reachable", reason)
    probe = _ping_client()
    version = probe.api.api_version
    probe.close()
    return docker.from_env(version=version, timeout=API_TIMEOUT)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _testcontainers() -> Any:
    """testcontainers' core module, with Ryuk disabled (we reap our own containers)."""
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    from testcontainers.core import container
    from testcontainers.core.config import testcontainers_config

    testcontainers_config.ryuk_disabled = True
    return container


def _ignore_missing(action: Callable[[], object]) -> None:
    """Run a Docker call whose target may already be gone (not found, not running)."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        action()


def start_box(box: Any) -> str:
    """Start a testcontainers container; its id (its own client is closed: we use ours)."""
    try:
        return str(box.start().get_container_id())
    finally:
        box.get_docker_client().client.close()
