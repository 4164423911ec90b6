"""Template data directories: ``initdb`` once per installation and settings, then copy per node.

Each independent primary then gets its own system identifier (see ``pgcontrol``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pytest_pgdr.basics.errors import ServerStartError
from pytest_pgdr.hosts.base import Host
from pytest_pgdr.hosts.install import Installation
from pytest_pgdr.hosts.local import HBA
from pytest_pgdr.hosts.osuser import OsUser

TEMPLATE_FORMAT = 4  # bump when the template's contents change
SUPERUSER = "postgres"
# initdb writes the time zone and locale it runs under into postgresql.conf: fixed here, so a
# cached template never depends on the environment of whoever built the cache (a team's own
# time zone is a server setting that every node gets)
INITDB_ENV = {"LC_ALL": "C", "TZ": "UTC"}
INCLUDE = "\n# pytest-pgdr: per-node settings\ninclude_if_exists = 'pgdr.conf'\n"


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


def ensure_template(inst: Installation, host: Host, cache_dir: Path, scratch: Path) -> Path:
    """The cached template data directory for this installation, built on first use.

    initdb runs through ``host`` in ``scratch`` (a directory its servers see); the template is
    cached where the host keeps it (``cache_dir`` when its servers see this machine's disk).
    """
    root = host.cache_home(cache_dir) / "templates"
    target = root / template_key(inst, host.user)
    if host.exists(target / "PG_VERSION"):
        return target
    with host.locked(root / ".lock"):
        if host.exists(target / "PG_VERSION"):
            return target
        host.make_dir(root, 0o711)
        tmp = scratch / f".build-{os.getpid()}"
        host.remove_tree(tmp)
        host.make_dir(tmp)
        _run_initdb(inst, host, tmp)
        host.write_file(tmp / "pg_hba.conf", HBA)
        conf = host.read_text(tmp / "postgresql.conf")
        host.write_file(tmp / "postgresql.conf", conf + INCLUDE)
        building = root / f".copy-{os.getpid()}"
        host.copy_tree(tmp, building)  # scratch may be another file system
        host.rename(building, target)  # whole, at once: others test PG_VERSION unlocked
        host.remove_tree(tmp)
    return target


def _run_initdb(inst: Installation, host: Host, datadir: Path) -> None:
    proc = host.run(initdb_args(inst, datadir), INITDB_ENV, timeout=300)
    if proc.returncode != 0:
        raise ServerStartError(
            f"initdb of {inst.describe()} failed (exit {proc.returncode})",
            "the template data directory could not be created",
            "Check that the installation is complete and that the OS user "
            f"{host.user.name!r} can run it",
            log_lines=(proc.stderr or proc.stdout).splitlines()[-15:],
            log_name="initdb output",
        )
