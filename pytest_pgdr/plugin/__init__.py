"""The pytest plugin: options, markers, opt-in, header, summary. Fixtures live in fixtures.py."""

from __future__ import annotations

import contextlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_pgdr.basics import progress as progress
from pytest_pgdr.basics.errors import PgdrError, VersionSkip
from pytest_pgdr.basics.settings import BY_NAME, OPTIONS, Settings, resolve
from pytest_pgdr.drill.budget import Budget, BudgetExceeded, Verdict, format_duration, judge
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.plugin.fixtures import (  # noqa: F401  (fixtures are found by name in the plugin module)
    KEY_MEASURE,
    KEY_SESSION,
    KEY_SETTINGS,
    pgdr,
    pgdr_archive,
    pgdr_dataset,
    pgdr_install,
    pgdr_measure,
    pgdr_primary,
    pgdr_replica,
    pgdr_seed,
    pgdr_session,
)
from pytest_pgdr.report import data as report_json
from pytest_pgdr.report.data import DrillResult, junit_properties
from pytest_pgdr.report.text import summary_lines
from pytest_pgdr.session import resolve_installations


def _scenarios_dir() -> Path:
    """Where the built-in drills are: the installed ``pytest_pgdr.scenarios``, or the
    top-level ``scenarios/`` of a source checkout (whose ``pytest_pgdr`` has no such package)."""
    try:
        spec = importlib.util.find_spec("pytest_pgdr.scenarios")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "scenarios"


SCENARIOS_DIR = _scenarios_dir()
REPORT_KEY = "pgdr"
DRILL_FIXTURES = {"pgdr", "pgdr_archive", "pgdr_primary", "pgdr_replica", "pgdr_session"}
OPT_IN = (
    "PostgreSQL DR drill: opt in with 'pytest --pgdr' (or pgdr_enabled = true in the ini"
    " file, or PGDR_ENABLED=1)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
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
        "pgdr(min_version=None, rto=None, rpo=None, phases=None): a PostgreSQL"
        " disaster-recovery drill; runs only with --pgdr, skipped on PostgreSQL older than"
        " min_version; fails when its measured RTO/RPO (or a phase, phases={name: limit})"
        " exceeds the budget, e.g. rto='30s', rpo=0",
    )
    try:
        settings = _settings(config)
        installs = resolve_installations(settings) if settings.enabled else []
    except PgdrError as exc:
        raise pytest.UsageError(f"pytest-pgdr: {exc}") from None
    config.stash[KEY_SETTINGS] = settings
    config.stash[KEY_SESSION] = None
    config.stash[_INSTALLS] = installs
    progress.set_sink(_progress_sink(config))
    if not hasattr(config, "workerinput"):  # reports are the controller's job under xdist
        collector = config.stash[_COLLECTOR] = RunCollector(config)
        config.pluginmanager.register(collector, "pgdr-run-collector")
    if settings.enabled and settings.scenarios == "only":
        config.args[:] = [str(SCENARIOS_DIR)]
    elif settings.enabled and settings.scenarios == "builtin" and _collects_directories(config):
        scenarios = str(SCENARIOS_DIR)
        if not any(
            Path(a).resolve() == SCENARIOS_DIR.resolve() for a in config.args if Path(a).exists()
        ):
            config.args.append(scenarios)


_INSTALLS = pytest.StashKey[list[Any]]()


def _progress_sink(config: pytest.Config) -> progress.Sink:
    """Progress lines reach the terminal: output capture is suspended while one is written."""
    capman = config.pluginmanager.getplugin("capturemanager")

    def write(text: str) -> None:
        suspended = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with suspended:
            sys.stderr.write(text)
            sys.stderr.flush()

    return write


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
    lines = [
        f"pgdr: drills on; backend {settings.backend} ({src['backend']});"
        f" built-in scenarios {settings.scenarios} ({src['scenarios']})"
    ]
    installs: list[Any] = config.stash.get(_INSTALLS, [])
    for spec, inst in zip(settings.specs(), installs, strict=False):
        if inst is None:
            lines.append(f"pgdr: {spec}: Docker is not reachable, its drills will be skipped")
        else:
            source = src["image"] if inst.image else src["postgres"]
            lines.append(f"pgdr: {inst.describe()} [{inst.label}] ({source})")
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
    specs = metafunc.config.stash[KEY_SETTINGS].specs()
    ids = [
        _spec_id(spec, inst)
        for spec, inst in zip(specs, installs or [None] * len(specs), strict=True)
    ]
    metafunc.parametrize("pgdr_install", list(specs), ids=ids, indirect=True, scope="session")


def _spec_id(spec: str, inst: Any) -> str:
    if inst is not None:
        return str(inst.label)
    return "pg-" + re.sub(r"[^A-Za-z0-9.]+", "-", spec.rsplit("/", 1)[-1].removesuffix(":latest"))


def _budget(item: pytest.Item) -> Budget:
    """The drill's marker keywords over the run's defaults (--pgdr-rto/-rpo, ini, env)."""
    settings = item.config.stash[KEY_SETTINGS]
    marker = item.get_closest_marker("pgdr")
    defaults = {
        key: (getattr(settings, key), settings.sources.get(key, "default"))
        for key in ("rto", "rpo")
    }
    try:
        return Budget.build(marker.kwargs if marker else {}, defaults)
    except PgdrError as exc:
        pytest.fail(
            f"pytest-pgdr: bad budget in the pgdr marker of {item.name}: {exc}", pytrace=False
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """After the drill body: judge what it measured against its budget; over budget fails."""
    budget = _budget(item)
    try:
        result = yield
    except BaseException:
        with contextlib.suppress(Exception):  # the drill's own failure is what matters
            _judge(item, budget)
        raise
    verdict = _judge(item, budget)
    if verdict is not None and verdict.over:
        raise BudgetExceeded(verdict.message(item.name))
    if verdict is None and "marker" in budget.sources.values():
        raise BudgetExceeded(
            f"pgdr: {item.name} sets a budget but measures nothing: request"
            " the pgdr_measure fixture and call declare_disaster()"
        )
    return result


def _judge(item: pytest.Item, budget: Budget) -> Verdict | None:
    measurement = item.stash.get(KEY_MEASURE, None)
    if measurement is None:
        return None
    verdict = judge(budget, measurement.as_dict())
    measurement.budget = budget.as_dict()
    measurement.verdict = verdict.as_dict()
    return verdict


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(VersionSkip):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    if call.excinfo is not None and call.excinfo.errisinstance(BudgetExceeded):
        report.longrepr = str(call.excinfo.value)
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    measurement = item.stash.get(KEY_MEASURE, None)
    if measurement is not None and report.when == "call":
        _fill_context(item, measurement)
        data = measurement.as_dict()
        setattr(report, REPORT_KEY, data)
        item.user_properties.extend(junit_properties(data))
    return report


def _fill_context(item: pytest.Item, measurement: Measurement) -> None:
    """Installation, backend and the server log lines that matter, from the drill's fixtures."""
    funcargs = getattr(item, "funcargs", {})
    inst = funcargs.get("pgdr_install")
    if inst is not None:
        measurement.context.setdefault("postgres", inst.label)
        measurement.context.setdefault("postgres_version", inst.version)
        measurement.context.setdefault("backend", "docker" if inst.image else "local")
    nodes = getattr(funcargs.get("pgdr"), "nodes", None)
    if isinstance(nodes, dict):
        measurement.attach_logs(nodes.values())


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def failed(item: pytest.Item) -> bool:
    return any(r.failed for r in item.stash.get(_REPORTS, {}).values())


class RunCollector:
    """On the controller: gathers every drill's call report (xdist-safe), writes the reports
    at session end and prints the summary table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = report_json.now()
        self.drills: list[DrillResult] = []
        self.notes: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, REPORT_KEY, None)
        if data is None or report.when != "call":
            return
        message = _failure_line(report) if report.failed else ""
        self.drills.append(
            DrillResult(report.nodeid, report.outcome, report.duration, data, message)
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        settings = self.config.stash.get(KEY_SETTINGS, None)
        if settings is None or not (settings.report or settings.html):
            return
        installs = [i for i in self.config.stash.get(_INSTALLS, []) if i is not None]
        self.notes = report_json.write_reports(
            settings,
            self.drills,
            self.started,
            int(exitstatus),
            installs=installs,
            args=self.config.invocation_params.args,
            bases={"cli": self.config.invocation_params.dir, "ini": self.config.rootpath},
        )

    def display(self, terminalreporter: Any) -> None:
        lines = summary_lines(sorted(self.drills, key=lambda d: d.nodeid))
        if lines:
            terminalreporter.write_sep("-", "pgdr recovery times")
            for line in lines:
                terminalreporter.write_line(line)
        for note in self.notes:
            terminalreporter.write_line(f"pgdr: {note}")


_COLLECTOR = pytest.StashKey[RunCollector]()


def _failure_line(report: pytest.TestReport) -> str:
    """A budget verdict as is; otherwise where and why, like ``--tb=line``."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:
        return report.longreprtext
    where = [f"{crash.path}:{crash.lineno}"]
    entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", [])
    drill = getattr(entries[0], "reprfileloc", None) if entries else None
    if drill is not None and f"{drill.path}:{drill.lineno}" != where[0]:
        where.insert(0, f"{drill.path}:{drill.lineno}")
    return f"{crash.message}\n(at {' -> '.join(where)})"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collector = config.stash.get(_COLLECTOR, None)
    if collector is not None:
        collector.display(terminalreporter)
    session = config.stash.get(KEY_SESSION, None)
    if session is not None and session.kept:
        terminalreporter.write_sep("-", "pgdr kept data directories")
        for path in session.kept:
            terminalreporter.write_line(str(path))


def pytest_unconfigure(config: pytest.Config) -> None:
    progress.set_sink(None)
    session = config.stash.get(KEY_SESSION, None)
    if session is not None:
        session.close()
        config.stash[KEY_SESSION] = None


__all__ = ["BY_NAME", "failed"]
