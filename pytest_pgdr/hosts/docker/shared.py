"""The Docker backend's one assumption, checked once per engine: it sees this machine's files.

Containers bind-mount the run directory at the same path, and the harness reads
``postmaster.pid``, logs and the archive from the local disk. An engine on another machine
(``DOCKER_HOST=tcp://...`` or ``ssh://...``) mounts *its* directory of that name instead, and
every drill would fail somewhere obscure; this check fails first, saying why.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from pytest_pgdr.hosts.docker.engine import DockerError, docker_host_text

_checked: set[str] = set()
REMOTE_WHY = (
    "the Docker backend bind-mounts this machine's run directory into every container; this"
    " engine mounts a directory of the same name on its own machine (a remote engine, or one"
    " in a VM or another mount namespace)"
)
REMOTE_FIX = (
    "Point DOCKER_HOST at an engine on this machine (or unset it); docs/scale.md says what"
    " drills on a remote engine need"
)


def check_engine_sees(root: Path, read_in_container: Callable[[list[str]], str]) -> None:
    """Write a token under ``root`` here and read it back in a container; once per engine."""
    engine = os.environ.get("DOCKER_HOST", "")
    if engine in _checked:
        return
    token = secrets.token_hex(8)
    probe = root / f".pgdr-engine-sees-{token}"
    probe.write_text(token)
    probe.chmod(0o644)
    try:
        seen = ""
        for _ in range(3):  # an engine now and then returns an exec's output empty
            seen = read_in_container(["cat", str(probe)]).strip()
            if seen:
                break
    finally:
        probe.unlink(missing_ok=True)
    if seen != token:
        raise DockerError(
            f"The Docker engine ({docker_host_text()}) does not see this machine's files",
            f"{REMOTE_WHY}: {probe} read {seen[:300]!r} in a container",
            REMOTE_FIX,
        )
    _checked.add(engine)
