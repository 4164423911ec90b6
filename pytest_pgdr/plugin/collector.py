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

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        where = getattr(report, TARGET_KEY, None)
        if where is not None:
            before = self.outcomes.get(report.nodeid, (where, "passed"))[1]
            if report.when == "call" or report.outcome != "passed":
                before = "failed" if "failed" in (before, report.outcome) else report.outcome
            self.outcomes[report.nodeid] = (where, before)
        data = getattr(report, REPORT_KEY, None)
        if data is None or report.when != "call":
            return
        from pytest_pgdr.report.data import DrillResult

        message = failure_line(report) if report.failed else ""
        self.drills.append(
            DrillResult(report.nodeid, report.outcome, report.duration, data, message)
        )

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
            bases={"cli": self.config.invocation_params.dir, "ini": self.config.rootpath},
        )

    def display(self, terminalreporter: Any) -> None:
        if self.drills:
            from pytest_pgdr.report.text import summary_lines

            terminalreporter.write_sep("-", "pgdr recovery times")
            for line in summary_lines(sorted(self.drills, key=lambda d: d.nodeid)):
                terminalreporter.write_line(line)
        settings = self.config.stash.get(KEY_SETTINGS, None)
        if self.outcomes or (settings is not None and settings.enabled):
            terminalreporter.write_line(count_line(self.outcomes))
        for note in self.notes:
            terminalreporter.write_line(f"pgdr: {note}")


KEY_COLLECTOR = pytest.StashKey[RunCollector]()


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
