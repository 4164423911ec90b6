"""The pytest plugin (entry point ``pytest_pgdr.plugin``): options, markers, opt-in, header,
budgets and summary. Fixtures live in fixtures.py, stash keys in state.py.

Registering the plugin imports pytest and the basics only: the drill core (cluster, drill,
hosts, session, report) and psycopg load inside the hooks once the drills are on (``--pgdr``,
ini or environment), or inside a pgdr fixture when a test requests one.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from pytest_pgdr.basics import progress
from pytest_pgdr.basics.errors import PgdrError, Unavailable, VersionSkip
from pytest_pgdr.plugin.collector import KEPT_KEY, KEY_COLLECTOR, KEY_KEPT_SEEN, RunCollector
from pytest_pgdr.plugin.fixtures import (  # noqa: F401  (fixtures are found by name in the plugin module)
    pgdr,
    pgdr_archive,
    pgdr_backup_tool,
    pgdr_client_path,
    pgdr_data,
    pgdr_dataset,
    pgdr_ha,
    pgdr_install,
    pgdr_measure,
    pgdr_patroni,
    pgdr_primary,
    pgdr_replica,
    pgdr_restore,
    pgdr_restored,
    pgdr_seed,
    pgdr_session,
    pgdr_source,
)
from pytest_pgdr.plugin.markers import marker_error, marker_problem
from pytest_pgdr.plugin.options import add_options, check_places, header_lines, settings_of
from pytest_pgdr.plugin.scenarios import add_scenarios, scenarios_dir
from pytest_pgdr.plugin.state import (
    DRILL_FIXTURES,
    KEY_INSTALLS,
    KEY_MEASURE,
    KEY_SESSION,
    KEY_SETTINGS,
    KEY_STARTED,
    KEY_UNAVAILABLE,
    OPT_IN,
    REPORT_KEY,
    TARGET_KEY,
    failed,
    remember_report,
    strict_note,
)
from pytest_pgdr.plugin.targets import target, unavailable_specs

if TYPE_CHECKING:
    from pytest_pgdr.drill.budget import Budget, Verdict
    from pytest_pgdr.drill.measure import Measurement

BUDGET_MODULE = "pytest_pgdr.drill.budget"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_pgdr.plugin import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pgdr(min_version=None, rto=None, rpo=None, phases=None): a PostgreSQL"
        " disaster-recovery drill; runs only with --pgdr, skipped on PostgreSQL older than"
        " min_version; fails when its measured RTO/RPO (or a phase, phases={name: limit})"
        " exceeds the budget, e.g. rto='30s', rpo=0",
    )
    try:
        settings = settings_of(config)
        check_places(config, settings)
        installs: list[Any] = []
        if settings.enabled:
            from pytest_pgdr.session import resolve_installations

            installs = list(resolve_installations(settings))
    except PgdrError as exc:
        raise pytest.UsageError(f"pytest-pgdr: {exc}") from None
    except subprocess.TimeoutExpired as exc:  # a program probed at startup hangs
        raise pytest.UsageError(hung_program(exc)) from None
    absent = unavailable_specs(settings, installs) if settings.enabled else {}
    if absent and settings.strict:
        reason = next(iter(absent.values()))
        raise pytest.UsageError(f"pytest-pgdr: {reason}{strict_note(settings)}")
    config.stash[KEY_SETTINGS] = settings
    config.stash[KEY_SESSION] = None
    config.stash[KEY_STARTED] = time.time()
    config.stash[KEY_INSTALLS] = installs
    config.stash[KEY_UNAVAILABLE] = absent
    progress.set_sink(_progress_sink(config))
    if not hasattr(config, "workerinput"):  # reports are the controller's job under xdist
        collector = config.stash[KEY_COLLECTOR] = RunCollector(config)
        config.pluginmanager.register(collector, "pgdr-run-collector")
    if settings.enabled and settings.scenarios != "none":
        add_scenarios(config, settings.scenarios)


def hung_program(exc: subprocess.TimeoutExpired) -> str:
    """One paragraph for a program that did not answer while the installations were probed."""
    cmd = exc.cmd if isinstance(exc.cmd, str) else shlex.join(str(c) for c in exc.cmd)
    return (
        f"pytest-pgdr: {cmd} did not answer within {exc.timeout:g} s and was stopped. A"
        " PostgreSQL program asked for its version should print it at once, so this is not"
        " a usable installation. Check the installation given with --pgdr-postgres (or"
        " pgdr_postgres / PGDR_POSTGRES), or choose another one."
    )


def _progress_sink(config: pytest.Config) -> progress.Sink:
    """Progress lines reach the terminal: output capture is suspended while one is written."""
    capman = config.pluginmanager.getplugin("capturemanager")

    def write(text: str) -> None:
        suspended = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with suspended:
            sys.stderr.write(text)
            sys.stderr.flush()

    return write


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(KEY_SETTINGS, None)
    if settings is None:
        return []
    return header_lines(
        settings, config.stash.get(KEY_INSTALLS, []), config.stash.get(KEY_UNAVAILABLE, {})
    )


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
    _parametrize_backup_tools(metafunc)
    _parametrize_sources(metafunc)
    if "pgdr_install" not in metafunc.fixturenames:
        return
    installs = metafunc.config.stash.get(KEY_INSTALLS, [])
    specs = metafunc.config.stash[KEY_SETTINGS].specs()
    ids = [
        _spec_id(spec, inst)
        for spec, inst in zip(specs, installs or [None] * len(specs), strict=True)
    ]
    metafunc.parametrize("pgdr_install", list(specs), ids=ids, indirect=True, scope="session")


def _parametrize_backup_tools(metafunc: pytest.Metafunc) -> None:
    """One run of a backup-tool drill per tool chosen (only with the drills on: the registry
    loads the cluster)."""
    settings = metafunc.config.stash[KEY_SETTINGS]
    if "pgdr_backup_tool" not in metafunc.fixturenames or not settings.enabled:
        return
    from pytest_pgdr.backup import resolve

    names = list(resolve(",".join(settings.backup_tool)))
    metafunc.parametrize("pgdr_backup_tool", names, ids=names, indirect=True)


def _parametrize_sources(metafunc: pytest.Metafunc) -> None:
    """One run of a nightly-restore test per backup source (and backend, when several)."""
    settings = metafunc.config.stash[KEY_SETTINGS]
    if "pgdr_source" not in metafunc.fixturenames or not settings.source:
        return
    backends = settings.backends
    values = [
        name if len(backends) == 1 else f"{name}@{backend}"
        for name, _, _ in settings.source
        for backend in backends
    ]
    ids = [value.replace("@", "-") for value in values]
    metafunc.parametrize("pgdr_source", values, ids=ids, indirect=True)


def _spec_id(spec: str, inst: Any) -> str:
    if inst is not None:
        return str(inst.label)
    return "pg-" + re.sub(r"[^A-Za-z0-9.]+", "-", spec.rsplit("/", 1)[-1].removesuffix(":latest"))


def _budget(item: pytest.Item) -> Budget:
    """The drill's marker keywords over the run's defaults (--pgdr-rto/-rpo, ini, env)."""
    from pytest_pgdr.drill.budget import Budget

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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A bad pgdr marker fails the drill before any fixture runs, naming the drill."""
    if not item.config.stash[KEY_SETTINGS].enabled:
        return  # the drill is skipped anyway
    for marker in item.iter_markers("pgdr"):
        problem = marker_problem(marker.args, marker.kwargs)
        if problem is not None:
            pytest.fail(marker_error(item.nodeid, problem), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """After the drill body: judge what it measured against its budget; over budget fails."""
    if not item.config.stash[KEY_SETTINGS].enabled and KEY_MEASURE not in item.stash:
        return (yield)  # drills are off and this test measures nothing: nothing to judge
    from pytest_pgdr.drill.budget import BudgetExceeded

    budget = _budget(item)
    try:
        result = yield
    except BaseException:
        # the drill's own failure is what matters: no verdict, so no report calls it "over
        # budget"; the budget is still recorded
        measurement = item.stash.get(KEY_MEASURE, None)
        if measurement is not None:
            measurement.budget = budget.as_dict()
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
    from pytest_pgdr.drill.budget import judge

    verdict = judge(budget, measurement.as_dict())
    measurement.budget = budget.as_dict()
    measurement.verdict = verdict.as_dict()
    return verdict


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    settings = item.config.stash[KEY_SETTINGS]
    excinfo = call.excinfo
    if (
        excinfo is not None
        and excinfo.errisinstance(Unavailable)
        and settings.fails_strictly(excinfo.value)
    ):
        report.longrepr = f"{excinfo.value}{strict_note(settings)}"
    elif excinfo is not None and excinfo.errisinstance((VersionSkip, Unavailable)):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {excinfo.value}")
    if _is_drill(item) or KEY_MEASURE in item.stash:
        setattr(report, TARGET_KEY, _target(item))
    budget_module = sys.modules.get(BUDGET_MODULE)  # loaded by a judged drill, if any
    if (
        call.excinfo is not None
        and budget_module is not None
        and call.excinfo.errisinstance(budget_module.BudgetExceeded)
    ):
        report.longrepr = str(call.excinfo.value)
    remember_report(item, report)
    if report.when == "teardown":
        _note_kept(item, report)
    measurement = item.stash.get(KEY_MEASURE, None)
    if measurement is not None and report.when == "call":
        from pytest_pgdr.report.junit import junit_properties

        _fill_context(item, measurement)
        data = measurement.as_dict()
        setattr(report, REPORT_KEY, data)
        item.user_properties.extend(junit_properties(data))
    return report


def _note_kept(item: pytest.Item, report: pytest.TestReport) -> None:
    """Directories the drill's teardown kept travel on its teardown report (xdist-safe), as
    (run directory, kept as) pairs; the failure section names where the logs are now."""
    session = item.config.stash.get(KEY_SESSION, None)
    kept = getattr(session, "kept", None) or []
    done = item.config.stash.get(KEY_KEPT_SEEN, 0)
    if len(kept) <= done:
        return
    item.config.stash[KEY_KEPT_SEEN] = len(kept)
    root = getattr((getattr(item, "funcargs", None) or {}).get("pgdr"), "root", None)
    pairs = [[str(root or ""), str(path)] for path in kept[done:]]
    setattr(report, KEPT_KEY, pairs)
    lines = [f"kept in {to}" + (f" (was {was})" if was else "") for was, to in pairs]
    report.sections.append(("pgdr kept (teardown)", "\n".join(lines)))


def _target(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    spec = callspec.params.get("pgdr_install") if callspec is not None else None
    if spec is None:  # a drill that picks its installation itself (the nightly restore)
        context = getattr(item.stash.get(KEY_MEASURE, None), "context", {})
        if "postgres_version" in context:
            major = str(context["postgres_version"]).split(".")[0]
            return f"{context.get('backend', 'local')}/pg{major}"
        return target(None, None)
    specs = item.config.stash[KEY_SETTINGS].specs()
    found: list[Any] = item.config.stash.get(KEY_INSTALLS, [])
    installs = dict(zip(specs, found, strict=False))
    return target(str(spec), installs.get(str(spec)))


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


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collector = config.stash.get(KEY_COLLECTOR, None)
    if collector is not None:
        collector.display(terminalreporter)


def pytest_unconfigure(config: pytest.Config) -> None:
    progress.set_sink(None)
    session = config.stash.get(KEY_SESSION, None)
    if session is not None:
        session.close()
        config.stash[KEY_SESSION] = None
    settings = config.stash.get(KEY_SETTINGS, None)
    if settings is not None and settings.enabled and not hasattr(config, "workerinput"):
        # (workers end before the controller) shared memory of servers killed where no one
        # noted their segments: this run's only
        from pytest_pgdr.hosts.osuser import resolve_os_user
        from pytest_pgdr.hosts.shm import remove_leftovers

        with contextlib.suppress(PgdrError, OSError, KeyError):
            remove_leftovers(config.stash[KEY_STARTED], resolve_os_user(settings.os_user).uid)


__all__ = ["failed", "scenarios_dir"]
