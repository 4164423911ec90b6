"""The terminal summary: one table of drills, with RTO phases under each row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_pgdr.basics.units import format_bytes, format_duration
from pytest_pgdr.report.data import DrillResult

COLUMNS = (
    "drill",
    "backend",
    "PostgreSQL",
    "RTO",
    "write outage",
    "RPO",
    "throughput/lag",
    "verdict",
)
NAME_WIDTH = 60


def format_seconds(seconds: float) -> str:
    return format_duration(seconds)


def rpo_text(rpo: Mapping[str, Any] | None) -> str:
    if not rpo:
        return "-"
    lost = rpo.get("lost_commits")
    parts = []
    if lost is not None:
        parts.append(f"{lost} lost")
    if rpo.get("window_s"):
        parts.append(format_duration(rpo["window_s"]))
    if rpo.get("wal_bytes") is not None:
        parts.append(f"{format_bytes(rpo['wal_bytes'])} WAL")
    return ", ".join(parts) or "-"


def outage_text(outage: Mapping[str, Any] | None) -> str:
    if not outage:
        return "-"
    if outage.get("seconds") is None:
        return "no write after fault"
    return format_duration(outage["seconds"])


def figure_text(figures: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for name, fig in figures.items():
        if fig.get("unit") == "B/s":
            parts.append(f"{format_bytes(fig['value'])}/s")
        elif "lag" in name and fig.get("unit") == "s":
            parts.append(f"lag {format_duration(fig['value'])}")
        elif "lag" in name and fig.get("unit") == "B":
            parts.append(f"lag {format_bytes(fig['value'])}")
    return ", ".join(parts) or "-"


def verdict_text(drill: DrillResult) -> str:
    verdict = drill.data.get("verdict") or {}
    status = verdict.get("status", "no budget")
    over = [
        c["figure"].split(" (")[0]
        for c in verdict.get("checks", [])
        if c["status"] in ("over", "unmeasured")
    ]
    if over:
        return "OVER BUDGET: " + ", ".join(over)
    if drill.outcome == "failed":
        return "FAILED"
    if drill.outcome == "skipped":
        return "skipped"
    return "ok" if status == "pass" else "passed, no budget"


def row(drill: DrillResult) -> tuple[str, ...]:
    data = drill.data
    rto = data.get("rto")
    name = drill.name.split("::", 1)[-1]
    name = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 3] + "..."
    return (
        name,
        str(data.get("context", {}).get("backend", "-")),
        drill.postgres or "-",
        format_duration(rto["total_s"]) if rto else "-",
        outage_text(data.get("outage")),
        rpo_text(data.get("rpo")),
        figure_text(data.get("figures", {})),
        verdict_text(drill),
    )


def phases_line(drill: DrillResult) -> str | None:
    rto = drill.data.get("rto")
    if not rto or not rto.get("phases"):
        return None
    phases = ", ".join(f"{p['name']} {format_duration(p['seconds'])}" for p in rto["phases"])
    return f"    RTO phases: {phases}"


def summary_lines(drills: Sequence[DrillResult]) -> list[str]:
    """The table, or nothing when no drill measured anything."""
    if not drills:
        return []
    rows = [row(d) for d in drills]
    widths = [max(len(r[i]) for r in [COLUMNS, *rows]) for i in range(len(COLUMNS))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = [fmt(COLUMNS)]
    for drill, cells in zip(drills, rows, strict=True):
        lines.append(fmt(cells))
        phases = phases_line(drill)
        if phases:
            lines.append(phases)
    return lines


def drill_names(d: Mapping[str, Any]) -> tuple[str, str]:
    """(test function, module) of a drill."""
    module, _, test = str(d.get("name") or d.get("id", "")).rpartition("::")
    return test, module
