"""The SVG pictures of the HTML report: a drill's timeline and a trend chart across runs.

Inline SVG only (no script); sizes are in viewBox units and the page scales them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from html import escape
from typing import Any

from pytest_pgdr.basics.units import format_duration
from pytest_pgdr.report.text import outage_text

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#bab0ac",
    "#ff9da7",
    "#e15759",
)
OUTAGE = "#d62728"
OK, BAD, WARN, MUTED = "#2e7d32", "#c62828", "#ef6c00", "#6b7280"
TIMELINE_W, LABEL_W = 900, 150
TREND_W, TREND_H = 520, 160


def timeline_svg(d: Mapping[str, Any]) -> str:
    """The RTO phases laid end to end, the write outage under them, on one time axis."""
    rto, outage = d.get("rto"), d.get("outage")
    budget = (d.get("budget") or {}).get("rto_s")
    if not rto and not outage:
        return ""
    end = max([rto["total_s"] if rto else 0, *_outage_span(outage), 0.001])
    scale = nice_ceiling(end * 1.05)
    if budget is not None and budget <= scale * 2:
        scale = nice_ceiling(max(end, budget) * 1.05)
    lanes = [_phase_lane(rto, scale, 28)] if rto else []
    if outage:
        lanes.append(_outage_lane(outage, scale, 28 + 44 * len(lanes)))
    height = 28 + 44 * len(lanes) + 22
    parts = [_axis(scale, height - 22), *lanes]
    if budget is not None:
        parts.append(_budget_marker(budget, scale, height - 22))
    return (
        f'<svg role="img" width="100%" viewBox="0 0 {TIMELINE_W + 20} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>timeline</title>{"".join(parts)}</svg>'
    )


def _budget_marker(budget: float, scale: float, bottom: float) -> str:
    label = f"RTO budget {format_duration(budget)}"
    if budget > scale:
        return (
            f'<text x="{TIMELINE_W}" y="12" text-anchor="end" style="fill:{MUTED}">'
            f"{escape(label)} (off this scale) &#8594;</text>"
        )
    x = _x(budget, scale)
    anchor, dx = ("end", -4) if x > TIMELINE_W - 120 else ("start", 4)
    return (
        f'<line x1="{x}" x2="{x}" y1="14" y2="{bottom}" stroke="{BAD}" '
        f'stroke-dasharray="5 3" stroke-width="1.5"/><text x="{x + dx}" y="12" '
        f'text-anchor="{anchor}" style="fill:{BAD}">{escape(label)}</text>'
    )


def _outage_span(outage: Mapping[str, Any] | None) -> list[float]:
    if not outage:
        return []
    return [v for v in (outage.get("start_s"), outage.get("end_s")) if v is not None]


def _x(seconds: float, scale: float) -> float:
    return round(LABEL_W + max(seconds, 0) / scale * (TIMELINE_W - LABEL_W), 1)


def _axis(scale: float, y: float) -> str:
    parts = [f'<line x1="{LABEL_W}" x2="{TIMELINE_W}" y1="{y}" y2="{y}" stroke="#9aa5b1"/>']
    for tick in ticks(scale):
        x = _x(tick, scale)
        parts.append(
            f'<line x1="{x}" x2="{x}" y1="18" y2="{y + 4}" stroke="#e4e7eb"/>'
            f'<text x="{x}" y="{y + 16}" text-anchor="middle">'
            f"{tick_label(tick, scale)}</text>"
        )
    parts.append(f'<text x="{LABEL_W - 8}" y="{y + 16}" text-anchor="end">since disaster</text>')
    return "".join(parts)


def _phase_lane(rto: Mapping[str, Any], scale: float, y: float) -> str:
    parts = [
        f'<text x="{LABEL_W - 8}" y="{y + 19}" text-anchor="end" font-weight="600">'
        f"RTO {format_duration(rto['total_s'])}</text>"
    ]
    start = 0.0
    for i, phase in enumerate(rto.get("phases", [])):
        x0, x1 = _x(start, scale), _x(start + phase["seconds"], scale)
        color = PALETTE[i % len(PALETTE)]
        label = f"{phase['name']} {format_duration(phase['seconds'])}"
        parts.append(
            f'<rect x="{x0}" y="{y}" width="{max(x1 - x0, 1.5)}" height="28" '
            f'fill="{color}"><title>{escape(label)}</title></rect>'
        )
        if x1 - x0 > 7 * len(label):
            parts.append(
                f'<text x="{(x0 + x1) / 2}" y="{y + 18}" text-anchor="middle" '
                f'style="fill:#fff">{escape(label)}</text>'
            )
        start += phase["seconds"]
    return "".join(parts) + _legend(rto, y + 30)


def _legend(rto: Mapping[str, Any], y: float) -> str:
    """Small phases get their name below the bar, in their colour."""
    x, parts = float(LABEL_W), []
    for i, phase in enumerate(rto.get("phases", [])):
        label = f"{phase['name']} {format_duration(phase['seconds'])}"
        parts.append(
            f'<rect x="{x}" y="{y + 2}" width="9" height="9" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 12}" y="{y + 10}" class=halo>{escape(label)}</text>'
        )
        x += 22 + 6.2 * len(label)
    return "".join(parts)


def _outage_lane(outage: Mapping[str, Any], scale: float, y: float) -> str:
    y += 12
    start, end = outage.get("start_s") or 0.0, outage.get("end_s") or 0.0
    x0, x1 = _x(start, scale), _x(end, scale)
    label = f"no write acknowledged for {outage_text(outage)}"
    if not outage.get("recovered"):
        label = "no write acknowledged after the fault"
    if x1 + 8 + 6.2 * len(label) <= TIMELINE_W:
        text = (
            f'<text x="{x1 + 6}" y="{y + 14}" class=halo style="fill:{OUTAGE}">'
            f"{escape(label)}</text>"
        )
    else:
        text = (
            f'<text x="{x0 + 6}" y="{y + 14}" style="fill:#fff;font-weight:600">'
            f"{escape(label)}</text>"
        )
    return (
        f'<text x="{LABEL_W - 8}" y="{y + 14}" text-anchor="end" font-weight="600">'
        f"client writes</text>"
        f'<line x1="{LABEL_W}" x2="{TIMELINE_W}" y1="{y + 10}" y2="{y + 10}" '
        f'stroke="{OK}" stroke-width="3" stroke-dasharray="2 3"/>'
        f'<rect x="{x0}" y="{y + 2}" width="{max(x1 - x0, 1.5)}" height="16" '
        f'fill="{OUTAGE}"><title>{escape(label)}</title></rect>{text}'
    )


def trend_chart(
    what: str,
    points: Sequence[tuple[int, Mapping[str, Any]]],
    labels: Sequence[str],
    pick: Any,
    failed: Collection[int] = (),
    fmt: Any = None,
) -> str:
    """One figure across runs; runs in ``failed`` are drawn as red crosses (at the value when
    one was measured, else on the axis), never left out."""
    measured = [(i, *pick(d)) for i, d in points]
    measured = [(i, v, b) for i, v, b in measured if v is not None]
    title = f"<div class=charttitle>{escape(what)}</div>"
    if not measured and failed:
        measured = [(min(failed), 0.0, None)]
    if not measured:
        return f"<div>{title}<p class=muted>not measured</p></div>"
    peak = max(v for _, v, _ in measured)
    if peak == 0 and not failed and all(b in (None, 0) for _, _, b in measured):
        return (
            f"<div>{title}<p class=zero>0 in all {len(measured)} runs: no acknowledged"
            " write lost</p></div>"
        )
    budgets = [b for _, _, b in measured if b is not None]
    top = nice_ceiling(max(peak, 1e-4) * 1.15)
    if budgets and max(budgets) <= top * 2:
        top = nice_ceiling(max([peak, *budgets]) * 1.1)
    svg = _trend_svg(measured, labels, top, set(failed), fmt or format_duration)
    return f"<div>{title}{svg}</div>"


def _trend_svg(
    measured: Sequence[tuple[int, float, float | None]],
    labels: Sequence[str],
    top: float,
    failed: set[int],
    fmt: Any,
) -> str:
    left, right, bottom, topm = 56, TREND_W - 14, TREND_H - 26, 16
    count = max(len(labels) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return (
            round(left + (right - left) * i / count, 1),
            round(bottom - (bottom - topm) * min(v, top) / top, 1),
        )

    parts = [f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#9aa5b1"/>']
    for tick in ticks(top):
        _, y = xy(0, tick)
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="#eef1f4"/>'
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">'
            f"{tick_label(tick, top)}</text>"
        )
    parts += _x_labels(labels, xy, bottom)
    parts += _budget_steps(measured, xy, top, right)
    line = " ".join(f"{x},{y}" for x, y in (xy(i, v) for i, v, _ in measured))
    parts.append(f'<polyline points="{line}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    at = {i: v for i, v, _ in measured}
    for i, v, b in measured:
        if i in failed:
            continue
        x, y = xy(i, v)
        color = BAD if b is not None and v > b else PALETTE[0]
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="3.5" fill="{color}"><title>'
            f"{escape(labels[i])}: {escape(fmt(v))}</title></circle>"
        )
    for i in sorted(failed):
        x, y = xy(i, at.get(i, 0.0))
        value = f": {fmt(at[i])}" if i in at else ": nothing measured"
        parts.append(
            f'<path d="M{x - 5},{y - 5}L{x + 5},{y + 5}M{x - 5},{y + 5}L{x + 5},{y - 5}" '
            f'stroke="{BAD}" stroke-width="2.5"><title>{escape(labels[i])}: FAILED'
            f"{escape(value)}</title></path>"
        )
    return (
        f'<svg width="100%" viewBox="0 0 {TREND_W} {TREND_H}" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def _x_labels(labels: Sequence[str], xy: Any, bottom: float) -> list[str]:
    last = len(labels) - 1
    step = max(1, math.ceil(len(labels) / 5))
    shown = sorted(set(range(0, len(labels), step)) | {last})
    out = []
    for i in shown:
        if i != last and last - i < step / 2:
            continue  # too close to the last label
        x, _ = xy(i, 0)
        anchor = "start" if i == 0 and last else "end" if i == last and last else "middle"
        out.append(
            f'<text x="{x}" y="{bottom + 16}" text-anchor="{anchor}">{escape(labels[i])}</text>'
        )
    return out


def _budget_steps(
    measured: Sequence[tuple[int, float, float | None]], xy: Any, top: float, right: float
) -> list[str]:
    """The budget as a dashed line that steps when it changed between runs."""
    out = []
    for (i, _, b), nxt in zip(measured, [*measured[1:], None], strict=True):
        if b is None or b > top:
            continue
        x0, y = xy(i, b)
        x1 = xy(nxt[0], b)[0] if nxt else x0 + 8
        out.append(
            f'<line x1="{x0}" x2="{x1}" y1="{y}" y2="{y}" stroke="{BAD}" '
            f'stroke-dasharray="5 3" stroke-width="1.5"><title>budget '
            f"{format_duration(b)}</title></line>"
        )
    latest = measured[-1][2]
    if latest is not None and latest > top:
        out.append(
            f'<text x="{right}" y="10" text-anchor="end" style="fill:{MUTED}">budget '
            f"{format_duration(latest)} (above this scale) &#8593;</text>"
        )
    elif latest is not None:
        _, y = xy(0, latest)
        out.append(
            f'<text x="{right}" y="{y - 4}" text-anchor="end" class=halo '
            f'style="fill:{BAD}">budget {format_duration(latest)}</text>'
        )
    return out


# axis helpers ---------------------------------------------------------------------------
def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def ticks(top: float) -> list[float]:
    """Round tick values from 0 to ``top`` (a :func:`nice_ceiling`)."""
    mantissa = round(top / 10 ** math.floor(math.log10(top)), 6)
    count = {2.0: 4}.get(mantissa, 5)
    return [round(top / count * i, 9) for i in range(count + 1)]


def tick_label(value: float, top: float) -> str:
    if value == 0:
        return "0"
    if top < 0.01:
        return f"{value * 1000:.1f} ms"
    if top <= 2:
        return f"{value * 1000:.0f} ms"
    if top <= 300:
        return f"{value:g} s"
    return f"{value / 60:g} min"
