"""The terminal summary: one table of drills, with RTO phases under each row."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from pytest_pgdr.basics.units import format_bytes, format_duration
from pytest_pgdr.report.data import DrillResult, first_line

COLUMNS = (
    "drill",
    "module",
    "target",
    "RTO",
    "write outage",
    "RPO",
    "throughput/lag",
    "verdict",
)


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
    if outage.get("observed") is False:
        return "unknown (not observed)"
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


def rank(drill: DrillResult) -> int:
    """0 failed (for a reason other than its budget), 1 over budget, 2 the rest."""
    if (drill.data.get("verdict") or {}).get("status") in ("over", "unmeasured"):
        return 1
    return 0 if drill.outcome == "failed" else 2


def ordered(drills: Sequence[DrillResult]) -> list[DrillResult]:
    """Failures first, then over budget, then the rest, each by node id."""
    return sorted(drills, key=lambda d: (rank(d), d.nodeid))


def test_name(drill: DrillResult) -> str:
    """The drill's test (class and function, parameters) without its file."""
    return drill.name.split("::", 1)[-1]


def module_name(drill: DrillResult) -> str:
    return PurePosixPath(drill.nodeid.split("::", 1)[0]).stem


def reason(drill: DrillResult) -> str:
    """The first line of why a drill failed or was skipped ('' for the rest)."""
    return first_line(drill.message)


def row(drill: DrillResult, drill_width: int | None = None) -> tuple[str, ...]:
    """The cells of one drill; an id longer than ``drill_width`` is its short id."""
    data = drill.data
    rto = data.get("rto")
    name = test_name(drill)
    return (
        drill.short_id if drill_width is not None and len(name) > drill_width else name,
        module_name(drill),
        target_text(drill),
        format_duration(rto["total_s"]) if rto else "-",
        outage_text(data.get("outage")),
        rpo_text(data.get("rpo")),
        figure_text(data.get("figures", {})),
        verdict_text(drill),
    )


def target_text(drill: DrillResult) -> str:
    """``local/embedded-18``: backend and PostgreSQL in one cell, and the backup tool the
    drill ran through when it ran through one (``local/pg15 via pgbackrest 2.45``)."""
    context = drill.data.get("context", {})
    if context.get("target") and not drill.postgres:  # failed before measuring anything
        where = str(context["target"])
    else:
        where = "/".join(str(p) for p in (context.get("backend"), drill.postgres) if p) or "-"
    tool = context.get("backup_tool")
    return f"{where} via {tool}" if tool else where


def phases_text(drill: DrillResult) -> str | None:
    rto = drill.data.get("rto")
    if not rto or not rto.get("phases"):
        return None
    return ", ".join(f"{p['name']} {format_duration(p['seconds'])}" for p in rto["phases"])


# what gives way, in this order, when the table is too wide: a column index moves under the
# row, -1 means short drill ids
STEPS = (6, 4, -1, 1, 5)
INDENT = "    "
SHORT_WIDTH = 25  # a short id: 18 characters of the name, "~" and 6 of a hash


def summary_lines(drills: Sequence[DrillResult], width: int = 120) -> list[str]:
    """The table (failures first, with their reason), every line at most ``width`` wide.

    Too wide: throughput/lag and write outage move under the row, then the drill column
    shows short ids (``name~hash``; the JSON report's ``short_id`` maps them back), then the
    module and RPO move under the row too.
    """
    if not drills:
        return []
    drills = ordered(drills)
    drill_width: int | None = None  # None: every drill id in full
    moved: list[int] = []
    steps = list(STEPS)
    while True:
        rows = [row(d, drill_width) for d in drills]
        keep = [i for i in range(len(COLUMNS)) if i not in moved]
        widths = {i: max(len(r[i]) for r in [COLUMNS, *rows]) for i in keep}
        if sum(widths.values()) + 2 * (len(keep) - 1) <= width:
            break
        if not steps:
            break
        step = steps.pop(0)
        if step < 0:  # ids longer than what is left for them become short ids
            others = sum(w for i, w in widths.items() if i != 0) + 2 * (len(keep) - 1)
            drill_width = max(width - others, SHORT_WIDTH)
        else:
            moved.append(step)

    def fmt(cells: Sequence[str]) -> str:
        text = "  ".join(cells[i].ljust(widths[i]) for i in keep).rstrip()
        return clip(text, width)

    lines = [fmt(COLUMNS)]
    for drill, cells in zip(drills, rows, strict=True):
        lines.append(fmt(cells))
        phases = phases_text(drill)
        if phases:
            lines += pack(f"RTO phases: {phases}", width)
        extra = [f"{COLUMNS[i]}: {cells[i]}" for i in sorted(moved) if cells[i] != "-"]
        if extra:
            lines += pack("; ".join(extra), width)
        why = reason(drill)
        if why and drill.outcome in ("failed", "skipped") and rank(drill) != 1:
            label = "FAILED" if drill.outcome == "failed" else "skipped"
            lines.append(clip(f"{INDENT}{label}: {why}", width))
    return lines


def pack(text: str, width: int) -> list[str]:
    """``text`` over indented lines of at most ``width``, broken after '; ' (or after ', '
    inside a part too long for a line of its own)."""
    pieces = [
        part
        for segment in re.split(r"(?<=;) ", text)
        for part in (
            [segment] if len(segment) <= width - 2 * len(INDENT) else re.split(r"(?<=,) ", segment)
        )
    ]
    lines, line = [], INDENT
    for piece in pieces:
        if line.strip() and len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = INDENT * 2
        line += ("" if not line.strip() else " ") + piece
    lines.append(line)
    return [clip(x, width) for x in lines]


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


def drill_names(d: Mapping[str, Any]) -> tuple[str, str]:
    """(test function, module) of a drill."""
    module, _, test = str(d.get("name") or d.get("id", "")).rpartition("::")
    return test, module
