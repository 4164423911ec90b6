"""Verification and orchestration: build what is missing (or asked for), in order."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from pytest_pgdr.hosts.images.dockercli import (
    _docker,
    _rebuild_hint,
    _require_docker,
    _run,
    postgres_version,
)
from pytest_pgdr.hosts.images.pg15 import build_pg15
from pytest_pgdr.hosts.images.pg18 import build_pg18
from pytest_pgdr.hosts.images.specs import (
    BACKUP_TOOLS,
    IMAGE_FORMAT,
    IMAGES,
    LABEL_FORMAT,
    LOCK_PATH,
    PG_BINARIES,
    SHELL_TOOLS,
    ImageBuildError,
    ImageSpec,
    Log,
)


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


def verify_image(spec: ImageSpec) -> str:
    """Check binaries, tools and the postgres user in *spec*; return the version."""
    script = "; ".join(
        [f"test -x {spec.bindir}/{b} || echo missing {spec.bindir}/{b}" for b in PG_BINARIES]
        + [f"command -v {t} >/dev/null || echo missing {t}" for t in SHELL_TOOLS + BACKUP_TOOLS]
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


def _image_format(tag: str) -> str:
    template = f'{{{{index .Config.Labels "{LABEL_FORMAT}"}}}}'
    proc = _docker("image", "inspect", "--format", template, tag)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _ensure_one(spec: ImageSpec, force: bool, log: Log) -> str | None:
    """Build *spec* unless it exists; return the replaced image's id, if any."""
    old_id = _image_id(spec.tag)
    if old_id and not force and _image_format(spec.tag) == str(IMAGE_FORMAT):
        log(f"{spec.tag}: exists, reusing (use --force to rebuild)")
        return None
    if old_id and not force:
        log(f"{spec.tag}: built by an older pytest-pgdr (image format), rebuilding")
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
