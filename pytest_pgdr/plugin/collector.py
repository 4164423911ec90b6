"""On the controller: every drill's call report (xdist-safe), the reports and the summary.

The report modules load only once a drill has measured something or a report was asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from pytest_pgdr.plugin.state import KEY_INSTALLS, KEY_SETTINGS, REPORT_KEY, TARGET_KEY
from pytest_pgdr.plugin.targets import count_line

if TYPE_CHECKING:
    from pytest_pgdr.report.data import DrillResult


class RunCollector:
    """Gathers every drill's call report, writes the reports at session end and prints the
    summary table."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = datetime.now(UTC)
        self.drills: list[DrillResult] = []
        self.notes: list[str] = []
        self.outcomes: dict[str, tuple[str, str]] = {}  # node id -> (target, outcome)
        self.kept: list[tuple[str, str]] = []  # (node id, kept directory)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._junit_classname(report)
        where = getattr(report, TARGET_KEY, None)
        if where is not None:
            before = self.outcomes.get(report.nodeid, (where, "passed"))[1]
            if report.when == "call" or report.outcome != "passed":
                before = "failed" if "failed" in (before, report.outcome) else report.outcome
            self.outcomes[report.nodeid] = (where, before)
        for was, to in getattr(report, KEPT_KEY, None) or []:
            self._kept(report.nodeid, was, to)
        data = getattr(report, REPORT_KEY, None)
        settings = self.config.stash.get(KEY_SETTINGS, None)
        if (
            data is None
            and settings is not None
            and settings.enabled
            and where is not None
            and report.when != "teardown"
            and not report.passed
        ):
            # a drill that failed or was skipped before measuring anything still has a result
            data = {"context": {"backend": str(where).partition("/")[0], "target": where}}
        if data is None or report.when == "teardown":
            return
        from pytest_pgdr.report.data import DrillResult

        self.drills.append(
            DrillResult(report.nodeid, report.outcome, report.duration, data, reason_of(report))
        )

    def _junit_classname(self, report: pytest.TestReport) -> None:
        """Class names relative to the rootdir or the package, never through site-packages
        (junitxml keeps an attribute set before it reads the report)."""
        from _pytest import junitxml

        xml = self.config.stash.get(junitxml.xml_key, None)
        name = junit_classname(report.nodeid)
        if xml is not None and name is not None:
            xml.node_reporter(report).add_attribute("classname", name)

    def _kept(self, nodeid: str, was: str, to: str) -> None:
        self.kept.append((nodeid, to))
        for drill in self.drills:
            if drill.nodeid == nodeid:
                drill.kept.append(to)
                if was:  # the logs the message names moved with the directory
                    drill.message = drill.message.replace(was, to)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        settings = self.config.stash.get(KEY_SETTINGS, None)
        if settings is None or not (settings.report or settings.html):
            return
        from pytest_pgdr.report.write import write_reports

        installs = [i for i in self.config.stash.get(KEY_INSTALLS, []) if i is not None]
        self.notes = write_reports(
            settings,
            self.drills,
            self.started,
            int(exitstatus),
            installs=installs,
            args=self.config.invocation_params.args,
            rootdir=self.config.rootpath,
            bases={"cli": self.config.invocation_params.dir, "ini": self.config.rootpath},
        )

    def display(self, terminalreporter: Any) -> None:
        shown = [d for d in self.drills if d.outcome == "failed" or set(d.data) - {"context"}]
        if shown:
            from pytest_pgdr.report.text import summary_lines

            width = self.config.get_terminal_writer().fullwidth
            terminalreporter.write_sep("-", "pgdr recovery times")
            for line in summary_lines(shown, width):
                terminalreporter.write_line(line)
        settings = self.config.stash.get(KEY_SETTINGS, None)
        if self.outcomes or (settings is not None and settings.enabled):
            terminalreporter.write_line(count_line(self.outcomes))
        for data in sorted({str(d.data["context"]["data"]) for d in self.drills if has_data(d)}):
            terminalreporter.write_line(f"pgdr: drills protected the {data}")
        if self.kept:
            terminalreporter.write_sep("-", "pgdr kept data directories and logs")
            for _, path in self.kept:  # the directory's name says which drill
                terminalreporter.write_line(path)
        for note in self.notes:
            terminalreporter.write_line(f"pgdr: {note}")


KEY_COLLECTOR = pytest.StashKey[RunCollector]()
KEY_KEPT_SEEN = pytest.StashKey[int]()  # how many kept paths teardown reports carried so far
# the attribute of a teardown report that lists what it kept: [[run directory, kept as], ...]
KEPT_KEY = "pgdr_kept"


def has_data(drill: Any) -> bool:
    """Whether the drill says which database it protected (the ``pgdr_data`` fixture)."""
    return bool(drill.data.get("context", {}).get("data"))


def junit_classname(nodeid: str) -> str | None:
    """``pytest_pgdr.scenarios.test_failover`` for an installed drill (its node id goes
    through ``site-packages`` or above the rootdir); None where pytest's own name is right."""
    path, *names = nodeid.split("::")
    if "site-packages/" in path:
        path = path.rsplit("site-packages/", 1)[1]
    elif path.startswith("../"):
        parts = path.split("/")
        path = (
            "/".join(parts[-2:])
            if "scenarios" not in parts
            else "/".join(
                parts[
                    parts.index("scenarios")
                    - (parts[parts.index("scenarios") - 1] == "pytest_pgdr") :
                ]
            )
        )
    else:
        return None
    module = path.removesuffix(".py").replace("/", ".")
    return ".".join([module, *names[:-1]])


def reason_of(report: pytest.TestReport) -> str:
    """Why a drill failed (see :func:`failure_line`) or was skipped ('' when it passed)."""
    if report.failed:
        return failure_line(report)
    if report.skipped:
        longrepr = report.longrepr
        text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr or "")
        return text.removeprefix("Skipped: ")
    return ""


def failure_line(report: pytest.TestReport) -> str:
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
