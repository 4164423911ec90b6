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

from .errors import ConfigError, PgdrError
from .host import LocalHost
from .install import Installation, find_installation, stage_for
from .osuser import OsUser, resolve_os_user
from .runtime import RunDir, sweep_orphans
from .settings import Settings
from .topology import Topology
from .wait import set_timeout_scale


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


class HarnessSession:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        set_timeout_scale(settings.timeout_scale)
        self.user: OsUser = resolve_os_user(settings.os_user)
        self.base = settings.base_dir()
        self.cache = private_dir(settings.cache_path())
        self.swept = sweep_orphans(self.base)
        self.run = RunDir(self.base)
        self.run.start_watchdog()
        self.host = LocalHost(self.user, self.run)
        self._installs: dict[str, Installation] = {}
        self._count = 0
        self.kept: list[Path] = []
        atexit.register(self.close)

    def installation(self, spec: str) -> Installation:
        if spec not in self._installs:
            self._installs[spec] = stage_for(find_installation(spec), self.user, self.cache)
        return self._installs[spec]

    def topology(self, inst: Installation, label: str = "t") -> Topology:
        self._count += 1
        slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:20] or "t"
        return Topology(inst, self.host, self.run.path / f"{self._count}_{slug}", self.cache,
                        fsync=self.settings.fsync)

    def keep_path(self, label: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:80]
        root = Path(os.environ.get("TMPDIR", "/tmp")) / "pytest-pgdr-kept"
        path = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{slug}"
        self.kept.append(path)
        return path

    def close(self) -> None:
        self.run.close()


def describe_error(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PgdrError) else f"{type(exc).__name__}: {exc}"
