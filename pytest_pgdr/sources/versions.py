"""Which installation (or image) restores a backup: the major the backup needs, from what the
run has; one clear error naming what to install when it has none."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pytest_pgdr.basics.errors import PgdrError
from pytest_pgdr.hosts.install import Installation
from pytest_pgdr.sources.base import SourceError, SourceSpec


def choose_installation(
    spec: SourceSpec,
    major: int,
    exact: bool,
    candidates: Sequence[tuple[str, Installation]],
    docker: bool,
    fallback: Callable[[str], Installation] | None = None,
) -> tuple[str, Installation]:
    """(spec, installation) of ``major`` (or, when not ``exact``, the oldest newer one).

    ``candidates`` are the run's own (--pgdr-postgres or --pgdr-image); on the local backend
    ``fallback`` tries the system's PostgreSQL ``major`` (Debian's /usr/lib/postgresql/N)."""
    same = [(s, i) for s, i in candidates if i.major == major]
    newer = sorted(((s, i) for s, i in candidates if i.major > major), key=lambda p: p[1].major)
    if same or (newer and not exact):
        return (same or newer)[0]
    if fallback is not None and not docker:
        try:
            return str(major), fallback(str(major))
        except PgdrError:
            pass
    have = ", ".join(f"{i.major} ({s})" for s, i in candidates) or "none"
    need = f"PostgreSQL {major}" + ("" if exact else " or newer")
    if docker:
        do = (
            f"Build or pull an image with PostgreSQL {major} and pass it with --pgdr-image"
            f" (e.g. 'python -m pytest_pgdr.images build' makes pytest-pgdr/pg{major} for the"
            " majors it knows)"
        )
    else:
        do = (
            f"Install it (apt-get install postgresql-{major}, from the PGDG repository) and"
            f" pass --pgdr-postgres {major}"
        )
    kind = "a physical backup restores only on its own major" if exact else "a dump loads into"
    kind += "" if exact else f" PostgreSQL {major} or any newer major"
    raise SourceError(
        f"Backup source {spec.name!r} needs {need}, which this run does not have",
        f"the backup says it came from PostgreSQL {major} ({kind}); this run has {have}",
        do,
    )
