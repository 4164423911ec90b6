"""pg15: a Debian bookworm minbase with postgresql-15 (debootstrap), ``docker import``-ed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pytest_pgdr.hosts.images.account import choose_ids, move_postgres_account
from pytest_pgdr.hosts.images.dockercli import _tail
from pytest_pgdr.hosts.images.mirror import _read, apt_mirror
from pytest_pgdr.hosts.images.specs import (
    COMPONENT,
    DEBOOTSTRAP_INCLUDE,
    IMAGE_FORMAT,
    LABEL_BINDIR,
    LABEL_FORMAT,
    LABEL_PG_MAJOR,
    LABEL_POSTGRES_UID,
    PG15_BINDIR,
    PG15_IMAGE,
    PG_BINARIES,
    ROOTFS_REMOVE,
    ROOTFS_TRIM,
    SHELL_TOOLS,
    SUITE,
    SYSTEM_PATH,
    ImageBuildError,
    Log,
)


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env)


def ensure_debootstrap(log: Log = print) -> str:
    """Path of debootstrap, installing it with apt-get when running as root."""
    found = shutil.which("debootstrap") or next(
        (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"debootstrap is not installed and this process is not root, so it cannot install it; "
            f"it is needed to build {PG15_IMAGE}. Run `sudo apt-get install -y debootstrap`, "
            "or run the build as root."
        )
    log("debootstrap missing: apt-get install -y debootstrap")
    proc = _apt_get("install", "-y", "debootstrap")
    if proc.returncode != 0:
        log("apt-get install failed; running apt-get update and retrying")
        _apt_get("update")
        proc = _apt_get("install", "-y", "debootstrap")
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if os.access("/usr/sbin/debootstrap", os.X_OK) else None
    )
    if proc.returncode != 0 or not found:
        raise ImageBuildError(
            f"could not install debootstrap with apt-get (exit {proc.returncode}):\n"
            f"{_tail(proc.stderr) or _tail(proc.stdout)}\n"
            "Install it by hand: apt-get update && apt-get install -y debootstrap"
        )
    return found


def debootstrap_command(debootstrap: str, rootfs: Path, mirror: str) -> list[str]:
    """The debootstrap command line that makes the pg15 root file system."""
    return [
        debootstrap,
        "--variant=minbase",
        f"--components={COMPONENT}",
        f"--include={','.join(DEBOOTSTRAP_INCLUDE)}",
        SUITE,
        str(rootfs),
        mirror,
    ]


def pg15_import_changes(uid: int | None = None) -> list[str]:
    """Dockerfile instructions given to `docker import --change`."""
    return [
        f"ENV PATH={PG15_BINDIR}:{SYSTEM_PATH}",
        "ENV LANG=C.UTF-8",
        f"LABEL {LABEL_PG_MAJOR}=15",
        f"LABEL {LABEL_BINDIR}={PG15_BINDIR}",
        f"LABEL {LABEL_FORMAT}={IMAGE_FORMAT}",
        *([f"LABEL {LABEL_POSTGRES_UID}={uid}"] if uid is not None else []),
        'CMD ["/bin/sh"]',
    ]


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below *root* (deepest first)."""
    root_s = str(root.resolve())
    found: list[str] = []
    for line in _read(Path("/proc/self/mounts")).splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[1])
        if point == root_s or point.startswith(root_s + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def _safe_rmtree(root: Path, log: Log) -> None:
    """Remove a debootstrap tree, unmounting anything debootstrap left mounted."""
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True)
    left = _mounts_under(root)
    if left:
        log(f"warning: not removing {root}: still mounted: {', '.join(left)}")
        return
    shutil.rmtree(root, ignore_errors=True)


def _missing_in_rootfs(rootfs: Path) -> list[str]:
    """Required binaries, tools and the postgres user absent from *rootfs*."""
    missing = [
        f"{PG15_BINDIR}/{b}"
        for b in PG_BINARIES
        if not os.path.lexists(rootfs / PG15_BINDIR.lstrip("/") / b)
    ]
    missing += [
        tool
        for tool in SHELL_TOOLS
        if not any(os.path.lexists(rootfs / d / tool) for d in ("usr/bin", "bin"))
    ]
    if "\npostgres:" not in "\n" + _read(rootfs / "etc/passwd"):
        missing.append("the postgres user in /etc/passwd")
    return missing


def _trim_rootfs(rootfs: Path) -> None:
    for rel in ROOTFS_TRIM:
        directory = rootfs / rel
        if not directory.is_dir() or directory.is_symlink():
            continue
        for child in directory.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    for rel in ROOTFS_REMOVE:
        shutil.rmtree(rootfs / rel, ignore_errors=True)


def _run_debootstrap(cmd: list[str], rootfs: Path, log_path: Path) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
    with open(log_path, "w", encoding="utf-8") as log_file:
        proc = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        detail = _tail(_read(rootfs / "debootstrap/debootstrap.log"), 10) or _tail(
            _read(log_path), 10
        )
        raise ImageBuildError(
            f"debootstrap failed (exit {proc.returncode}) building {PG15_IMAGE}: "
            f"`{' '.join(cmd)}`\n"
            f"{detail}\nFull output: {log_path}. Check that the mirror from the apt configuration "
            "is reachable (`apt-get update` works) and that there is free disk space."
        )


def _docker_import(rootfs: Path, tag: str, changes: Sequence[str]) -> None:
    cmd = ["docker", "import"]
    for change in changes:
        cmd += ["--change", change]
    cmd += ["-", tag]
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tar.stdout is not None
    imp = subprocess.run(cmd, stdin=tar.stdout, capture_output=True, text=True)
    tar.stdout.close()
    tar_err = tar.stderr.read().decode("utf-8", "replace") if tar.stderr else ""
    tar_rc = tar.wait()
    if tar_rc != 0 or imp.returncode != 0:
        raise ImageBuildError(
            f"importing {rootfs} as {tag} failed "
            f"(tar exit {tar_rc}, docker import exit {imp.returncode}):\n"
            f"{_tail(tar_err, 5)}\n{_tail(imp.stderr, 5)}\n"
            "Check the Docker engine (`docker info`) and free disk space, then rerun with --force."
        )


def _own_postgres_account(rootfs: Path, log: Log) -> int:
    """Move the image's postgres account to a uid/gid no account here has; the uid."""
    try:
        uid, gid = choose_ids(rootfs)
    except LookupError as exc:
        raise ImageBuildError(
            f"cannot build {PG15_IMAGE}: {exc} (every one is an account or group on this "
            "machine or in the image). Free one of them, or change FIRST_ID in "
            "pytest_pgdr/hosts/images/account.py."
        ) from None
    old_uid, old_gid = move_postgres_account(rootfs, uid, gid)
    log(f"postgres account: uid {old_uid} -> {uid}, gid {old_gid} -> {gid} (unused here)")
    return uid


def build_pg15(log: Log = print) -> None:
    """debootstrap a bookworm minbase with postgresql-15 and import it."""
    mirror = apt_mirror()
    debootstrap = ensure_debootstrap(log)
    workdir = Path(tempfile.mkdtemp(prefix="pytest-pgdr-pg15-"))
    rootfs = workdir / "rootfs"
    log_path = Path(tempfile.gettempdir()) / "pytest-pgdr-debootstrap.log"
    cmd = debootstrap_command(debootstrap, rootfs, mirror)
    log(f"debootstrap: {' '.join(cmd)} (log: {log_path})")
    try:
        _run_debootstrap(cmd, rootfs, log_path)
        missing = _missing_in_rootfs(rootfs)
        if missing:
            raise ImageBuildError(
                f"the debootstrapped root file system lacks {', '.join(missing)}; "
                f"cannot build {PG15_IMAGE}. See {log_path}."
            )
        uid = _own_postgres_account(rootfs, log)
        _trim_rootfs(rootfs)
        log(f"docker import -> {PG15_IMAGE}")
        _docker_import(rootfs, PG15_IMAGE, pg15_import_changes(uid))
    finally:
        _safe_rmtree(workdir, log)
