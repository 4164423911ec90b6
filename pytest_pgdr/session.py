"""One harness session per process: settings, installations, the run directory, topologies.

Plain Python; the pytest plugin creates one lazily, the first time a drill needs a server.
"""

from __future__ import annotations

import atexit
import os
import re
import stat
import time
from pathlib import Path

from pytest_pgdr.basics.errors import ConfigError, PgdrError, Unavailable
from pytest_pgdr.basics.settings import DOCKER_PREFIX, Settings
from pytest_pgdr.basics.wait import set_timeout_scale
from pytest_pgdr.cluster.topology import Topology
from pytest_pgdr.hosts.base import Host
from pytest_pgdr.hosts.install import Installation, find_installation, stage_for
from pytest_pgdr.hosts.local import LocalHost
from pytest_pgdr.hosts.osuser import OsUser, resolve_os_user
from pytest_pgdr.hosts.rundir import RunDir
from pytest_pgdr.hosts.sweep import sweep_orphans
from pytest_pgdr.hosts.watchdog import start_watchdog


def private_dir(path: Path) -> Path:
    """Create ``path`` (0711) or check an existing one is ours and not a link."""
    path.mkdir(mode=0o711, parents=True, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        raise ConfigError(
            f"{path} is not a directory owned by this user",
            "someone else created it (or it is a symbolic link), so it cannot be trusted",
            "Remove it, or choose another place with --pgdr-cache-dir / --pgdr-basetemp",
        )
    os.chmod(path, 0o711)
    return path


class DockerUnavailable(Unavailable):
    """The docker backend was chosen but no Docker engine answers (drills are skipped)."""


def resolve_installations(settings: Settings) -> list[Installation | None]:
    """One per ``settings.specs()``: installations, images (None while Docker is absent)."""
    out: list[Installation | None] = []
    docker_ok: bool | None = None
    for spec in settings.specs():
        if not spec.startswith(DOCKER_PREFIX):
            out.append(find_installation(spec))
            continue
        from pytest_pgdr.hosts.docker import docker_status, image_installation

        if docker_ok is None:
            docker_ok = docker_status()[0]
        out.append(image_installation(spec.removeprefix(DOCKER_PREFIX)) if docker_ok else None)
    return out


def _sweep_docker() -> list[str]:
    from pytest_pgdr.hosts.docker import sweep_docker_leftovers

    return sweep_docker_leftovers()


class HarnessSession:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        set_timeout_scale(settings.timeout_scale)
        self.docker = "docker" in settings.backends
        self._docker_checked = False
        self.user: OsUser = resolve_os_user(settings.os_user)
        self.base = settings.base_dir()
        self.cache = private_dir(settings.cache_path())
        self.swept = sweep_orphans(self.base)
        self.swept_docker = _sweep_docker()  # a dead run's containers, whatever this run's backend
        self.run = RunDir(self.base)
        start_watchdog(self.run)
        self.host = LocalHost(self.user, self.run)
        self._installs: dict[str, Installation] = {}
        self._count = 0
        self.kept: list[Path] = []
        atexit.register(self.close)

    def _check_docker(self) -> None:
        if self._docker_checked:
            return
        from pytest_pgdr.hosts.docker import docker_status, sweep_docker_orphans

        ok, why = docker_status()
        if not ok:
            raise DockerUnavailable(
                "The docker backend was chosen but Docker is not reachable",
                why,
                "Start Docker or set DOCKER_HOST, or run with --pgdr-backend=local",
            )
        sweep_docker_orphans()
        self._docker_checked = True

    def installation(self, spec: str) -> Installation:
        if spec not in self._installs:
            if spec.startswith(DOCKER_PREFIX):
                from pytest_pgdr.hosts.docker import image_installation

                self._check_docker()
                self._installs[spec] = image_installation(spec.removeprefix(DOCKER_PREFIX))
            else:
                inst = find_installation(spec)
                self._installs[spec] = stage_for(inst, self.user, self.cache)
        return self._installs[spec]

    def topology(self, inst: Installation, label: str = "t") -> Topology:
        """A new topology on ``inst``: local processes, or containers for an image."""
        self._count += 1
        slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:20] or "t"
        root = self.run.path / f"{self._count}_{slug}"
        host: Host = self.host
        if inst.image:
            from pytest_pgdr.hosts.docker import docker_host, image_user

            host = docker_host(
                image_user(inst.image, self.user),
                self.run,
                inst.image,
                root,
                f"{self._count}{slug[:12]}",
                self.settings.docker_storage,
                self.settings.docker_address,
            )
        return Topology(
            inst,
            host,
            root,
            self.cache,
            fsync=self.settings.fsync,
            settings=self.settings.server_settings_map(),
        )

    def keep_path(self, label: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:80]
        root = Path(os.environ.get("TMPDIR", "/tmp")) / "pytest-pgdr-kept"
        path = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{slug}"
        self.kept.append(path)
        return path

    def close(self) -> None:
        if self._docker_checked:
            from pytest_pgdr.hosts.docker import remove_run_containers

            remove_run_containers(self.run.path)
        self.run.close()


def describe_error(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PgdrError) else f"{type(exc).__name__}: {exc}"
