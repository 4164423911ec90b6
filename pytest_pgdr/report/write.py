"""Writing the reports a run asked for: the JSON file and the HTML page, each by its own module.

The JSON module (:mod:`pytest_pgdr.report.data`) knows nothing of HTML; this one calls each
writer in turn and returns one line per file for the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_pgdr.basics.paths import output_path
from pytest_pgdr.report.data import (
    DrillResult,
    build,
    environment,
    load_history,
    now,
    with_current,
    write,
)
from pytest_pgdr.report.html import render


def write_reports(
    settings: Any,
    drills: Sequence[DrillResult],
    started: datetime,
    exit_status: int,
    installs: Iterable[Any] = (),
    args: Sequence[str] = (),
    bases: Mapping[str, Path] | None = None,
    rootdir: Path | None = None,
) -> list[str]:
    """Write the JSON and/or HTML report a run asked for; returns lines for the terminal."""
    bases = bases or {"cli": Path.cwd(), "ini": Path.cwd()}
    env = environment(
        installs,
        {
            "backend": settings.backend,
            "postgres": list(settings.postgres),
            "fsync": settings.fsync,
            "timeout_scale": settings.timeout_scale,
            "rto_budget_s": settings.rto,
            "rpo_budget_s": settings.rpo,
        },
    )
    report = build(drills, env, started, now(), exit_status, args, rootdir=rootdir)
    notes = []
    if settings.report:
        path = output_path(settings.report, settings.sources.get("report", ""), bases)
        try:
            notes.append(f"JSON report written to {write(path, report)}")
        except OSError as exc:
            notes.append(_failed("JSON", "--pgdr-report", path, exc))
    if settings.html:
        path = output_path(settings.html, settings.sources.get("html", ""), bases)
        try:
            notes += _write_html(settings, report, bases, path)
        except OSError as exc:
            notes.append(_failed("HTML", "--pgdr-html", path, exc))
    return notes


def _failed(kind: str, flag: str, path: Path, exc: OSError) -> str:
    """One paragraph: what, why, what to do (the summary above still has every result)."""
    return (
        f"ERROR: the {kind} report could not be written to {path}."
        f" {exc.strerror or exc} ({type(exc).__name__})."
        f" The drills' results are in the summary above; give {flag} a path this user can"
        " write to and run again."
    )


def _write_html(
    settings: Any,
    report: Mapping[str, Any],
    bases: Mapping[str, Path],
    path: Path,
) -> list[str]:
    notes: list[str] = []
    history: list[dict[str, Any]] = []
    if settings.history:
        folder = output_path(settings.history, settings.sources.get("history", ""), bases)
        history = load_history(folder, warn=notes.append)
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = with_current(history, report)
    path.write_text(render(report, runs))
    trends = f" ({len(runs) - 1} earlier runs in the trends)" if settings.history else ""
    return [*notes, f"HTML report written to {path}{trends}"]
