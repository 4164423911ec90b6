"""Options, ini keys and the header: everything the plugin does before knowing it is wanted.

Imports pytest and the basics only, so registering the plugin costs nothing in runs that never
turn the drills on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pytest_pgdr.basics.paths import check_dir, check_output_file, output_path
from pytest_pgdr.basics.settings import OPTIONS, Settings, resolve
from pytest_pgdr.basics.units import format_duration
from pytest_pgdr.plugin.targets import target


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("pgdr", "PostgreSQL disaster-recovery drills (pytest-pgdr)")
    group.addoption(
        "--pgdr",
        action="store_true",
        default=None,
        help="run PostgreSQL DR drills (built-in scenarios and tests marked pgdr)",
    )
    parser.addini("pgdr_enabled", "run PostgreSQL DR drills (like --pgdr)", default="")
    for opt in OPTIONS:
        group.addoption(
            opt.flag,
            dest=f"pgdr_{opt.name}",
            default=None,
            action="append" if opt.multiple else "store",
            help=f"{opt.help} (ini {opt.ini}, env {opt.env}; default {opt.default})",
        )
        parser.addini(opt.ini, opt.help, default="")


def settings_of(config: pytest.Config) -> Settings:
    """Resolve every option from the command line, the environment and the ini file."""
    cli = {opt.name: config.getoption(f"pgdr_{opt.name}") for opt in OPTIONS}
    ini = {opt.name: config.getini(opt.ini) for opt in OPTIONS}
    enabled: bool | None = True if config.getoption("pgdr") else None
    return resolve(cli, ini, enabled=enabled, ini_enabled=str(config.getini("pgdr_enabled")))


def check_places(config: pytest.Config, settings: Settings) -> None:
    """Report files always (they are written even when no drill ran); the data and cache
    directories when the drills are on. Raises ConfigError for a place that cannot be used."""
    bases = {"cli": config.invocation_params.dir, "ini": config.rootpath}
    for name in ("report", "html"):
        text = getattr(settings, name)
        if text:
            flag = f"--pgdr-{name}"
            check_output_file(flag, output_path(text, settings.sources.get(name, ""), bases))
    if settings.enabled:
        check_dir("--pgdr-basetemp", settings.base_dir())
        check_dir("--pgdr-cache-dir", settings.cache_path())


def header_lines(
    settings: Settings, installs: list[Any], absent: Mapping[str, str] | None = None
) -> list[str]:
    src = settings.sources
    if not settings.enabled:
        return ["pgdr: drills off (run with --pgdr to enable)"]
    absent = absent or {}
    lines = [
        f"pgdr: drills on; backend {settings.backend} ({src['backend']});"
        f" built-in scenarios {settings.scenarios} ({src['scenarios']});"
        f" strict {'on' if settings.strict else 'off'} ({src['strict']})"
    ]
    lines.append(data_line(settings))
    for spec, inst in zip(settings.specs(), installs, strict=False):
        if spec in absent or inst is None:
            why = absent.get(spec, "Docker is not reachable.")
            lines.append(f"pgdr: {spec} [{target(spec, None)}]: its drills will be skipped: {why}")
        else:
            source = src["image"] if inst.image else src["postgres"]
            lines.append(f"pgdr: {inst.describe()} [{inst.label}, {target(spec, inst)}] ({source})")
    lines.append(
        f"pgdr: data in {settings.base_dir()} ({src['basetemp']}), fsync"
        f" {'on' if settings.fsync else 'off'} ({src['fsync']}), keep {settings.keep}"
        f" ({src['keep']})"
    )
    lines.append(
        f"pgdr: budgets rto {_budget_text(settings.rto)} ({src['rto']}), rpo"
        f" {_budget_text(settings.rpo)} ({src['rpo']}); a drill's marker wins"
    )
    outputs = [
        f"{name} {getattr(settings, name)} ({src[name]})"
        for name in ("report", "html", "history")
        if getattr(settings, name)
    ]
    if outputs:
        lines.append("pgdr: " + ", ".join(outputs))
    return lines


def _budget_text(seconds: float | None) -> str:
    return "none" if seconds is None else format_duration(seconds)


def data_line(settings: Settings) -> str:
    """What the drills protect, in one header line."""
    src = settings.sources
    what = (
        f"schema {', '.join(settings.schema)} ({src['schema']})"
        if settings.schema
        else f"built-in dataset at scale {settings.scale:g} unless a pytest_pgdr_seed hook loads"
        " yours"
    )
    extra = ", ".join(f"{k}={v}" for k, v in settings.server_settings)
    return f"pgdr: database {settings.database!r}: {what}; victim table {settings.victim}" + (
        f"; server settings {extra}" if extra else ""
    )
