"""Template data directories: ``initdb`` once per installation and settings, then copy per node.

Each independent primary gets its own system identifier, written into the copy's
``global/pg_control`` (with its CRC-32C recomputed) and into the long page header of each WAL
segment, so a replica can never attach to the wrong cluster.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pytest_pgdr.basics.errors import ServerStartError
from pytest_pgdr.hosts.install import Installation
from pytest_pgdr.hosts.osuser import OsUser

TEMPLATE_FORMAT = 3  # bump when the template's contents change
SUPERUSER = "postgres"
XLP_LONG_HEADER = 0x0002

HBA = """\
# pytest-pgdr: the socket directory is private (0700, server user only), TCP needs a password.
local   all             all                                     trust
local   replication     all                                     trust
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
"""


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """CRC-32C (Castagnoli), as PostgreSQL computes it; returns the finalised value."""
    return _crc32c_update(crc, data) ^ 0xFFFFFFFF


def _crc32c_update(crc: int, data: bytes) -> int:
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def control_crc_offset(control: bytes) -> int:
    """Where pg_control keeps its CRC: the first 4-aligned offset where the CRC of all bytes
    before it matches. The layout changes across major versions, so it is found, not assumed."""
    crc = 0xFFFFFFFF
    for offset in range(0, 1024, 4):
        if offset >= 16 and struct.unpack_from("<I", control, offset)[0] == crc ^ 0xFFFFFFFF:
            return offset
        crc = _crc32c_update(crc, control[offset : offset + 4])
    raise ValueError("pg_control CRC not found: not a PostgreSQL control file?")


def new_system_identifier() -> int:
    """Like initdb's: seconds in the high half, then microseconds, then random bits."""
    now = time.time()
    seconds, micros = int(now), int((now % 1) * 1_000_000)
    return (seconds << 32) | (micros << 12) | secrets.randbits(12)


def set_system_identifier(datadir: Path, sysid: int) -> None:
    control_path = datadir / "global" / "pg_control"
    control = bytearray(control_path.read_bytes())
    offset = control_crc_offset(bytes(control))
    struct.pack_into("<Q", control, 0, sysid)
    struct.pack_into("<I", control, offset, crc32c(bytes(control[:offset])))
    control_path.write_bytes(bytes(control))
    for segment in (datadir / "pg_wal").iterdir():
        if len(segment.name) == 24 and segment.is_file():
            _patch_segment_sysid(segment, sysid)


def _patch_segment_sysid(segment: Path, sysid: int) -> None:
    with open(segment, "r+b") as fh:
        header = fh.read(32)
        if len(header) == 32 and struct.unpack_from("<H", header, 2)[0] & XLP_LONG_HEADER:
            fh.seek(24)
            fh.write(struct.pack("<Q", sysid))


def system_identifier(datadir: Path) -> int:
    return int(struct.unpack_from("<Q", (datadir / "global" / "pg_control").read_bytes(), 0)[0])


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
        proc = runner.run(argv, {"LC_ALL": "C"}, timeout=300)
    else:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            env={**os.environ, "LC_ALL": "C"},
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
