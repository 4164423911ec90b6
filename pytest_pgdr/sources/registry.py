"""The one place that picks a backup source by kind; members are imported only when chosen."""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.parsers import SOURCE_KINDS
from pytest_pgdr.cluster.recovery import KINDS as TARGET_KINDS
from pytest_pgdr.cluster.recovery import RecoveryTarget
from pytest_pgdr.sources.base import BackupSource, SourceSpec, SourceUnavailable

# kind -> (module under pytest_pgdr.sources, class, the program that must be installed)
MEMBERS: dict[str, tuple[str, str, str | None]] = {
    "dump": ("dump", "Dump", None),
    "dumpall": ("dump", "DumpAll", None),
    "basebackup": ("physical", "BaseBackup", None),
    "pgbackrest": ("pgbackrest", "PgBackRestSource", "pgbackrest"),
    "barman": ("barman", "BarmanSource", "barman"),
    "walg": ("walg", "WalGSource", None),
}
assert tuple(MEMBERS) == SOURCE_KINDS
# options every kind accepts; each member lists its own in OPTIONS
COMMON_OPTIONS = ("target", "action", "major")


def parse_spec(name: str, kind: str, rest: str) -> SourceSpec:
    """``path?key=value&key=value`` (from the settings' triples) into a :class:`SourceSpec`."""
    path, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    return SourceSpec(name, kind, str(Path(path.strip()).expanduser()), options)


def target_of(spec: SourceSpec) -> RecoveryTarget:
    """``?target=kind:value`` (``latest``, ``immediate``, ``time:...``, ``name:...``,
    ``lsn:...``, ``xid:...``) and ``?action=promote|pause``; default: the latest point."""
    text = spec.option("target", "latest")
    kind, _, value = text.partition(":")
    if kind not in TARGET_KINDS:
        raise ConfigError(
            f"Bad recovery target {text!r} for backup source {spec.name!r}",
            f"valid kinds: {', '.join(TARGET_KINDS)} (e.g. target=name:before_release,"
            " target=time:2026-01-31 02:00:00+00)",
        )
    return RecoveryTarget(kind=kind, value=value, action=spec.option("action", "promote"))


def check_options(spec: SourceSpec, allowed: tuple[str, ...]) -> None:
    """Refuse an option the kind does not know (a typo would otherwise be ignored)."""
    bad = sorted(set(spec.options) - set(allowed) - set(COMMON_OPTIONS))
    if bad:
        raise ConfigError(
            f"Backup source {spec.name!r} has unknown option(s) {', '.join(bad)}",
            f"a {spec.kind} source accepts: {', '.join((*allowed, *COMMON_OPTIONS))}",
        )


def open_source(spec: SourceSpec, programs: Mapping[str, str | None] | None = None) -> BackupSource:
    """The member for ``spec.kind``; :class:`SourceUnavailable` when its tool is missing
    (``programs`` maps kinds to binaries, e.g. ``{"walg": "/opt/wal-g"}`` from --pgdr-walg)."""
    module, cls, program = MEMBERS[spec.kind]
    if program is not None and shutil.which(program) is None:
        raise SourceUnavailable(
            f"Backup source {spec.name!r} needs {program}, which is not installed here",
            f"no {program} on PATH",
            f"Install it (apt-get install {program}) on the machine that runs the nightly job",
        )
    factory: Callable[..., BackupSource] = getattr(
        importlib.import_module(f"pytest_pgdr.sources.{module}"), cls
    )
    binary = (programs or {}).get(spec.kind)
    source = factory(spec, binary) if binary else factory(spec)
    target_of(spec)  # a bad target fails before anything is restored
    return source


def sources_from(triples: tuple[tuple[str, str, str], ...]) -> dict[str, SourceSpec]:
    """Every source of the settings (``Settings.source``), by name."""
    return {name: parse_spec(name, kind, rest) for name, kind, rest in triples}


__all__ = ["MEMBERS", "open_source", "parse_spec", "sources_from", "target_of"]
