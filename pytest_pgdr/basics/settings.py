"""Settings: each one a ``--pgdr-*`` flag, a ``pgdr_*`` ini key and a ``PGDR_*`` variable.

Resolved once, CLI > environment > ini > default (checked with ``is None``, so valid falsy
values survive), into a frozen :class:`Settings`. Plain Python: the plugin feeds it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_pgdr.basics.parsers import (
    parse_backends,
    parse_backup_tools,
    parse_bool,
    parse_choice,
    parse_count,
    parse_database,
    parse_dsn,
    parse_identifier,
    parse_lines,
    parse_optional_path,
    parse_path,
    parse_positive_float,
    parse_server_settings,
    parse_sources,
    parse_specs,
    parse_urls,
)
from pytest_pgdr.basics.units import parse_optional_duration

DOCKER_PREFIX = "docker:"
DEFAULT_IMAGES = "pytest-pgdr/pg18:latest,pytest-pgdr/pg15:latest"
KEEP = ("never", "failed", "always")
SCENARIOS = ("builtin", "only", "none")
STRICT = ("on", "off", "auto")
HA = ("installed", "required")
NOT_CI = ("", "0", "false", "no", "off")
SHM = Path("/dev/shm")
SHM_MIN_FREE = 2 << 30


@dataclass(frozen=True)
class Option:
    name: str  # "postgres" -> --pgdr-postgres, pgdr_postgres, PGDR_POSTGRES
    default: str
    parse: Callable[[str, str], Any]
    help: str
    multiple: bool = False

    @property
    def flag(self) -> str:
        return f"--pgdr-{self.name.replace('_', '-')}"

    @property
    def ini(self) -> str:
        return f"pgdr_{self.name}"

    @property
    def env(self) -> str:
        return f"PGDR_{self.name.upper()}"


OPTIONS = (
    Option(
        "postgres",
        "embedded",
        parse_specs,
        "PostgreSQL installation(s) to drill on: embedded, system, system:N, N, pg_config or a"
        " bin directory; repeat or comma-separate for several (each drill runs on each)",
        multiple=True,
    ),
    Option(
        "backend",
        "local",
        parse_backends,
        "where nodes run: local processes, docker (one container per node), or both"
        " (local,docker: each drill runs on each)",
    ),
    Option(
        "image",
        DEFAULT_IMAGES,
        parse_specs,
        "Docker image(s) for the docker backend; repeat or comma-separate for several"
        " (each drill runs on each); build the default ones with"
        " 'python -m pytest_pgdr.hosts.images build'",
        multiple=True,
    ),
    Option(
        "docker_storage",
        "auto",
        parse_choice(("auto", "bind", "volume")),
        "where the docker backend keeps data directories and the archive: bind (this"
        " machine's disk, bind-mounted), volume (Docker volumes, for an engine on another"
        " machine), auto (volume when DOCKER_HOST is tcp:// or ssh://)",
    ),
    Option(
        "docker_address",
        "auto",
        lambda n, t: t,
        "the loopback or private address where the engine publishes server ports (auto: the"
        " DOCKER_HOST machine, else 127.0.0.1)",
    ),
    Option("os_user", "auto", lambda n, t: t, "OS user for servers when pytest runs as root"),
    Option(
        "keep",
        "never",
        parse_choice(KEEP),
        "keep data directories and logs of drills: never, failed, always",
    ),
    Option(
        "basetemp",
        "auto",
        parse_path,
        "where data directories go (auto: /dev/shm when it has room, else the temp dir)",
    ),
    Option("cache_dir", "auto", parse_path, "where template data directories are cached"),
    Option(
        "fsync", "off", parse_bool, "fsync in servers and tools (off is safe for process crashes)"
    ),
    Option("timeout_scale", "1", parse_positive_float, "multiply every wait's deadline (slow CI)"),
    Option(
        "scenarios",
        "builtin",
        parse_choice(SCENARIOS),
        "with --pgdr, also collect the built-in drills (builtin), run only them (only),"
        " or not at all (none)",
    ),
    Option(
        "rto",
        "none",
        parse_optional_duration,
        "RTO budget of every drill, e.g. 250ms, 30s, 2m (a drill's pgdr(rto=...) marker"
        " wins); a drill over budget fails",
    ),
    Option(
        "rpo",
        "none",
        parse_optional_duration,
        "RPO budget (data-loss window) of every drill, e.g. 0 or 5m (a drill's"
        " pgdr(rpo=...) marker wins); a drill over budget fails",
    ),
    Option(
        "report", "none", parse_optional_path, "write the JSON report of the drills to this file"
    ),
    Option(
        "html",
        "none",
        parse_optional_path,
        "write the HTML report (one self-contained file) to this file",
    ),
    Option(
        "history",
        "none",
        parse_optional_path,
        "folder of earlier JSON reports: the HTML report draws RTO/RPO trends from them",
    ),
    Option(
        "schema",
        "none",
        parse_lines,
        "your database for the drills: SQL files, pg_dump archives or directories of"
        " migrations, loaded in order (one a line in the ini file); none: the built-in dataset",
        multiple=True,
    ),
    Option(
        "server_settings",
        "none",
        parse_server_settings,
        "server settings every node gets, as your servers have them: name = value, one a"
        " line (or ';'-separated), e.g. max_connections = 100",
        multiple=True,
    ),
    Option("database", "app", parse_database, "the database your data is loaded into"),
    Option(
        "victim",
        "auto",
        parse_identifier,
        "the table the drills' accidents (DELETE, DROP TABLE) hit (auto: the largest table no"
        " foreign key or view depends on)",
    ),
    Option(
        "scale", "1", parse_positive_float, "size of the built-in dataset (1 = about 26,000 rows)"
    ),
    Option(
        "backup_tool",
        "installed",
        parse_backup_tools,
        "backup tool(s) the backup-tool drills run through: plain, pgbackrest, barman, walg,"
        " installed (every one this machine has) or all; a named tool that is missing fails"
        " in strict mode",
        multiple=True,
    ),
    Option("walg", "none", parse_optional_path, "the wal-g binary for the WAL-G drills"),
    Option(
        "ha",
        "installed",
        parse_choice(HA),
        "the HA stack (Patroni, etcd, pgbouncer, pgpool-II) for the HA drills: installed (they"
        " run where it is installed and are skipped, saying so, where it is not) or required"
        " (a missing program fails in strict mode)",
    ),
    Option(
        "ha_trials",
        "3",
        parse_count,
        "how many times the HA drills repeat the leader kill (failover time, outage and lost"
        " commits per trial, with their median and spread)",
    ),
    Option(
        "patroni_url",
        "none",
        parse_urls,
        "REST URLs of a running Patroni cluster's members (http://user:password@host:8008):"
        " the HA drills target it instead of starting one; host-level faults are skipped",
        multiple=True,
    ),
    Option(
        "patroni_dsn",
        "none",
        parse_dsn,
        "libpq connection string for that cluster (user, password; no host): e.g."
        " 'user=postgres password=...'",
    ),
    Option(
        "source",
        "none",
        parse_sources,
        "your real backups for the nightly restore drill: name = kind:path[?key=value&...],"
        " one a line (kind: dump, dumpall, basebackup, pgbackrest, barman, walg); see"
        " docs/nightly.md",
        multiple=True,
    ),
    Option(
        "source_checks",
        "none",
        parse_optional_path,
        "a TOML file of checks every restored backup must pass (tables, row counts, data"
        " age, SQL assertions); see docs/nightly.md",
    ),
    Option(
        "strict",
        "auto",
        parse_choice(STRICT),
        "strict mode (on, off, auto: on when the environment variable CI is set): a requested"
        " backend, installation, image or tool that is unavailable fails the run instead of"
        " skipping its drills",
    ),
)
BY_NAME = {opt.name: opt for opt in OPTIONS}


@dataclass(frozen=True)
class Settings:
    enabled: bool = False
    postgres: tuple[str, ...] = ("embedded",)
    backend: str = "local"
    image: tuple[str, ...] = tuple(DEFAULT_IMAGES.split(","))
    docker_storage: str = "auto"
    docker_address: str = "auto"
    os_user: str = "auto"
    keep: str = "never"
    basetemp: str = "auto"
    cache_dir: str = "auto"
    fsync: bool = False
    timeout_scale: float = 1.0
    scenarios: str = "builtin"
    rto: float | None = None
    rpo: float | None = None
    report: str | None = None
    html: str | None = None
    history: str | None = None
    schema: tuple[str, ...] = ()
    server_settings: tuple[tuple[str, str], ...] = ()
    database: str = "app"
    victim: str = "auto"
    scale: float = 1.0
    backup_tool: tuple[str, ...] = ("installed",)
    walg: str | None = None
    ha: str = "installed"
    ha_trials: int = 3
    patroni_url: tuple[str, ...] = ()
    patroni_dsn: str | None = None
    source: tuple[tuple[str, str, str], ...] = ()
    source_checks: str | None = None
    strict: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def fails_strictly(self, exc: BaseException) -> bool:
        """Whether an :class:`Unavailable` ``exc`` fails the drill (strict mode, and the
        missing thing was asked for) rather than skipping it."""
        optional = getattr(exc, "component", "") == "ha" and self.ha == "installed"
        return self.strict and not optional

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(self.backend.split(","))

    def server_settings_map(self) -> dict[str, object]:
        return dict(self.server_settings)

    def specs(self) -> tuple[str, ...]:
        """What each drill is parametrized over: installations, and ``docker:IMAGE``s."""
        out: list[str] = []
        for backend in self.backends:
            if backend == "docker":
                out += [DOCKER_PREFIX + image for image in self.image]
            else:
                out += list(self.postgres)
        return tuple(out)

    def base_dir(self) -> Path:
        if self.basetemp != "auto":
            return Path(self.basetemp)
        if SHM.is_dir() and os.access(SHM, os.W_OK) and shutil.disk_usage(SHM).free > SHM_MIN_FREE:
            return SHM
        return Path(tempfile.gettempdir())

    def cache_path(self) -> Path:
        if self.cache_dir != "auto":
            return Path(self.cache_dir)
        return Path("/var/tmp") / f"pytest-pgdr-cache-{os.geteuid()}"


def resolve(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    enabled: bool | None = None,
    ini_enabled: str = "",
) -> Settings:
    """Resolve every option; ``cli``/``ini`` map option names to raw values (None = unset).

    ``enabled`` is the command line's ``--pgdr`` (None when absent), then ``PGDR_ENABLED``,
    then ``ini_enabled`` (the ini key ``pgdr_enabled``). A bad value anywhere, an ini value the
    command line overrides included, is a :class:`ConfigError` listing the valid ones.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        raw, source = _pick(opt, cli.get(opt.name), env.get(opt.env), ini.get(opt.name))
        values[opt.name] = opt.parse(opt.flag, raw)
        sources[opt.name] = source
        if not source.startswith("ini") and _given(ini.get(opt.name)):
            opt.parse(f"{opt.ini} (ini file)", _text(ini[opt.name]))  # a bad one still errs
    values["strict"], sources["strict"] = _strict(values["strict"], sources["strict"], env)
    from_ini = parse_bool("pgdr_enabled (ini file)", ini_enabled) if ini_enabled.strip() else None
    if enabled is None and env.get("PGDR_ENABLED", "").strip():
        enabled = parse_bool("PGDR_ENABLED", env["PGDR_ENABLED"])
    if enabled is None:
        enabled = bool(from_ini)
    return Settings(enabled=enabled, sources=sources, **values)


def _strict(value: str, source: str, env: Mapping[str, str]) -> tuple[bool, str]:
    """``auto`` is on when the environment variable CI is set (to anything but 0/false/no)."""
    if value != "auto":
        return value == "on", source
    ci = env.get("CI", "").strip().lower() not in NOT_CI
    return ci, f"{source}: auto, CI is {'set' if ci else 'not set'}"


def _given(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _text(value: Any) -> str:
    return "\n".join(value) if isinstance(value, list | tuple) else str(value)


def _pick(opt: Option, cli: Any, env: str | None, ini: Any) -> tuple[str, str]:
    if _given(cli):
        return _text(cli), "command line"
    if env is not None and env != "":
        return env, f"environment {opt.env}"
    if _given(ini):
        return _text(ini), f"ini {opt.ini}"
    return opt.default, "default"
