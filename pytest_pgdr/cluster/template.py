"""Template data directories: ``initdb`` once per installation and settings, then copy per node.

Each independent primary then gets its own system identifier (see ``pgcontrol``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pytest_pgdr.basics.errors import ServerStartError
from pytest_pgdr.hosts.install import Installation
from pytest_pgdr.hosts.local import HBA
from pytest_pgdr.hosts.osuser import OsUser

TEMPLATE_FORMAT = 4  # bump when the template's contents change
SUPERUSER = "postgres"
# initdb writes the time zone and locale it runs under into postgresql.conf: fixed here, so a
# cached template never depends on the environment of whoever built the cache (a team's own
# time zone is a server setting that every node gets)
INITDB_ENV = {"LC_ALL": "C", "TZ": "UTC"}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def initdb_args(inst: Installation, datadir: Path) -> list[str]:
    return [
        str(inst.tool("initdb")),
        "-D",
        str(datadir),
        "-U",
        SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C",
        "--data-checksums",
        "--no-sync",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
    ]


def template_key(inst: Installation, user: OsUser) -> str:
    text = f"{TEMPLATE_FORMAT}\0{inst.key}\0{user.uid}\0{HBA}"
    return f"pg{inst.major}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


class InitdbRunner(Protocol):
    """Runs a program as the server user where ``scratch`` is visible (a host)."""

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


def ensure_template(
    inst: Installation,
    user: OsUser,
    cache_dir: Path,
    runner: InitdbRunner | None = None,
    scratch: Path | None = None,
) -> Path:
    """The cached template data directory for this installation, built on first use.

    ``runner`` runs initdb (default: locally as ``user``) in ``scratch`` (default: the cache),
    which must be visible to it, e.g. a directory bind-mounted into a container.
    """
    root = cache_dir / "templates"
    target = root / template_key(inst, user)
    if (target / "PG_VERSION").exists():
        return target
    with _locked(root / ".lock"):
        if (target / "PG_VERSION").exists():
            return target
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o711)
        tmp = (scratch or root) / f".build-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        user.chown(tmp)
        _run_initdb(inst, user, tmp, runner)
        (tmp / "pg_hba.conf").write_text(HBA)
        with open(tmp / "postgresql.conf", "a") as fh:
            fh.write("\n# pytest-pgdr: per-node settings\ninclude_if_exists = 'pgdr.conf'\n")
        user.chown_tree(tmp)
        if scratch is None:
            os.rename(tmp, target)
        else:  # another file system: copy keeping owners, then drop the scratch copy
            copy_datadir(tmp, root / f".copy-{os.getpid()}")
            os.rename(root / f".copy-{os.getpid()}", target)
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _run_initdb(
    inst: Installation, user: OsUser, datadir: Path, runner: InitdbRunner | None
) -> None:
    argv = initdb_args(inst, datadir)
    if runner is not None:
        proc = runner.run(argv, INITDB_ENV, timeout=300)
    else:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            env={**os.environ, **INITDB_ENV},
            **user.popen_kwargs(),
        )
    if proc.returncode != 0:
        raise ServerStartError(
            f"initdb of {inst.describe()} failed (exit {proc.returncode})",
            "the template data directory could not be created",
            "Check that the installation is complete and that the OS user "
            f"{user.name!r} can run it",
            log_lines=(proc.stderr or proc.stdout).splitlines()[-15:],
            log_name="initdb output",
        )


def copy_datadir(source: Path, target: Path) -> None:
    """Copy a data directory keeping owners and modes (``cp -a``: fast, and root keeps owners)."""
    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", str(source), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise OSError(f"copying {source} to {target} failed: {proc.stderr.strip()}")
