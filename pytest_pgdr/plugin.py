"""The pytest plugin: options, markers, opt-in, header, summary. Fixtures live in fixtures.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from .errors import PgdrError, VersionSkip
from .fixtures import (  # noqa: F401  (fixtures are found by name in the plugin module)
    KEY_MEASURE,
    KEY_SESSION,
    KEY_SETTINGS,
    pgdr,
    pgdr_archive,
    pgdr_install,
    pgdr_measure,
    pgdr_primary,
    pgdr_replica,
    pgdr_seed,
    pgdr_session,
)
from .install import find_installation
from .measure import summary_lines
from .settings import BY_NAME, OPTIONS, Settings, resolve

def _scenarios_dir() -> Path:
    """Where the built-in drills are installed (``pytest_pgdr.scenarios``)."""
    spec = importlib.util.find_spec("pytest_pgdr.scenarios")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).parent / "scenarios"


SCENARIOS_DIR = _scenarios_dir()
REPORT_KEY = "pgdr"
DRILL_FIXTURES = {"pgdr", "pgdr_archive", "pgdr_primary", "pgdr_replica", "pgdr_session"}
OPT_IN = ("PostgreSQL DR drill: opt in with 'pytest --pgdr' (or pgdr_enabled = true in the ini"
          " file, or PGDR_ENABLED=1)")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pgdr", "PostgreSQL disaster-recovery drills (pytest-pgdr)")
    group.addoption("--pgdr", action="store_true", default=None,
                    help="run PostgreSQL DR drills (built-in scenarios and tests marked pgdr)")
    parser.addini("pgdr_enabled", "run PostgreSQL DR drills (like --pgdr)", default="")
    for opt in OPTIONS:
        group.addoption(opt.flag, dest=f"pgdr_{opt.name}", default=None,
                        action="append" if opt.multiple else "store",
                        help=f"{opt.help} (ini {opt.ini}, env {opt.env}; default {opt.default})")
        parser.addini(opt.ini, opt.help, default="")


def _settings(config: pytest.Config) -> Settings:
    cli = {opt.name: config.getoption(f"pgdr_{opt.name}") for opt in OPTIONS}
    ini = {opt.name: config.getini(opt.ini) for opt in OPTIONS}
    enabled: bool | None = True if config.getoption("pgdr") else None
    if enabled is None and str(config.getini("pgdr_enabled")).strip():
        enabled = str(config.getini("pgdr_enabled")).strip().lower() in ("1", "true", "on", "yes")
    return resolve(cli, ini, enabled=enabled)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pgdr(min_version=None): a PostgreSQL disaster-recovery drill; runs only with --pgdr,"
        " skipped on PostgreSQL older than min_version",
    )
    try:
        settings = _settings(config)
        installs = [find_installation(spec) for spec in settings.postgres] if settings.enabled else []
    except PgdrError as exc:
        raise pytest.UsageError(f"pytest-pgdr: {exc}") from None
    config.stash[KEY_SETTINGS] = settings
    config.stash[KEY_SESSION] = None
    config.stash[_INSTALLS] = installs
    if settings.enabled and settings.scenarios == "builtin" and _collects_directories(config):
        scenarios = str(SCENARIOS_DIR)
        if not any(Path(a).resolve() == SCENARIOS_DIR.resolve() for a in config.args
                   if Path(a).exists()):
            config.args.append(scenarios)


_INSTALLS = pytest.StashKey[list[Any]]()


def _collects_directories(config: pytest.Config) -> bool:
    """Built-in drills join runs over directories, not runs that name test files or ids."""
    return not any("::" in arg or arg.endswith(".py") for arg in config.args)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(KEY_SETTINGS, None)
    if settings is None:
        return []
    src = settings.sources
    if not settings.enabled:
        return ["pgdr: drills off (run with --pgdr to enable)"]
    lines = [f"pgdr: drills on; backend {settings.backend} ({src['backend']});"
             f" built-in scenarios {settings.scenarios} ({src['scenarios']})"]
    for inst in config.stash.get(_INSTALLS, []):
        lines.append(f"pgdr: {inst.describe()} [{inst.label}] ({src['postgres']})")
    lines.append(f"pgdr: data in {settings.base_dir()} ({src['basetemp']}), fsync"
                 f" {'on' if settings.fsync else 'off'} ({src['fsync']}), keep {settings.keep}"
                 f" ({src['keep']})")
    return lines


def _is_drill(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return item.get_closest_marker("pgdr") is not None or bool(fixtures & DRILL_FIXTURES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash[KEY_SETTINGS].enabled:
        return
    skip = pytest.mark.skip(reason=OPT_IN)
    for item in items:
        if _is_drill(item):
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pgdr_install" not in metafunc.fixturenames:
        return
    installs = metafunc.config.stash.get(_INSTALLS, [])
    specs = metafunc.config.stash[KEY_SETTINGS].postgres
    ids = [inst.label for inst in installs] if installs else [f"pg-{s}" for s in specs]
    metafunc.parametrize("pgdr_install", list(specs), ids=ids, indirect=True, scope="session")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(VersionSkip):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    measurement = item.stash.get(KEY_MEASURE, None)
    if measurement is not None and report.when == "call":
        inst = getattr(item, "funcargs", {}).get("pgdr_install")
        if inst is not None:
            measurement.context.setdefault("postgres", inst.label)
            measurement.context.setdefault("backend", "local")
        data = measurement.as_dict()
        setattr(report, REPORT_KEY, data)
        if "rto" in data:
            item.user_properties.append(("pgdr_rto_s", data["rto"]["total_s"]))
            for phase in data["rto"]["phases"]:
                item.user_properties.append((f"pgdr_phase_{phase['name']}_s", phase["seconds"]))
    return report


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def failed(item: pytest.Item) -> bool:
    return any(r.failed for r in item.stash.get(_REPORTS, {}).values())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            data = getattr(report, REPORT_KEY, None)
            if data and getattr(report, "when", "") == "call":
                rows.append((report.nodeid.split("/")[-1], data))
    lines = summary_lines(sorted(rows, key=lambda r: r[0]))
    if lines:
        terminalreporter.write_sep("-", "pgdr recovery times")
        for line in lines:
            terminalreporter.write_line(line)
    session = config.stash.get(KEY_SESSION, None)
    if session is not None and session.kept:
        terminalreporter.write_sep("-", "pgdr kept data directories")
        for path in session.kept:
            terminalreporter.write_line(str(path))


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(KEY_SESSION, None)
    if session is not None:
        session.close()
        config.stash[KEY_SESSION] = None


__all__ = ["BY_NAME", "failed"]
