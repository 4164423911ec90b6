"""The HTML report: one self-contained file (inline CSS and SVG; no script, server or CDN).

Per drill: its verdict, a timeline of the RTO phases with the client's write outage under it,
the budget checks and the server log lines that matter. Given earlier JSON reports, trend
charts of RTO and RPO per drill across runs, with the budget lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_pgdr.drill.budget import format_bytes, format_duration
from pytest_pgdr.report.text import figure_text, outage_text, rpo_text

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
VERDICTS = {
    "pass": ("within budget", OK),
    "over": ("OVER BUDGET", BAD),
    "unmeasured": ("budget not measured", BAD),
    "no budget": ("no budget", MUTED),
}
TIMELINE_W, LABEL_W = 900, 150
TREND_W, TREND_H = 520, 160

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
  background:#f4f5f7;color:#1f2933}
header{background:#1f2933;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px;font-size:22px}
header .meta{color:#cbd2d9;font-size:13px}
main{padding:20px 32px;max-width:1240px}
h2{font-size:18px;margin:28px 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.stat{background:#fff;border-radius:8px;padding:10px 16px;box-shadow:0 1px 2px #0002;
  min-width:120px}
.stat b{display:block;font-size:24px}
.stat span{color:#52606d;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002;
  border-radius:8px;overflow:hidden}
table{font-size:13px}
th,td{padding:7px 10px;text-align:left;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{background:#eef1f4;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#52606d}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pill{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;font-size:12px;
  font-weight:600;white-space:nowrap}
.drill{background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002;margin:16px 0;
  padding:14px 18px}
.drill h3{margin:0 0 6px;font-size:16px;word-break:break-all}
.drill .sub{color:#52606d;font-size:13px;margin-bottom:8px}
.figs{display:flex;gap:28px;margin:8px 0 4px}
.figs div span{display:block;color:#52606d;font-size:11px;text-transform:uppercase}
.figs div b{font-size:18px;font-variant-numeric:tabular-nums}
.over b{color:#c62828}
details{margin-top:8px}
summary{cursor:pointer;color:#334e68;font-weight:600}
pre{background:#1f2933;color:#e4e7eb;padding:10px;border-radius:6px;overflow:auto;font-size:12px;
  white-space:pre-wrap}
table.checks{box-shadow:none;width:auto;margin-top:6px}
table.checks td,table.checks th{padding:3px 12px}
.trend{background:#fff;border-radius:8px;box-shadow:0 1px 2px #0002;padding:10px 14px}
.trend h4{margin:0;font-size:14px}
.trend .pg{color:#52606d;font-weight:500}
.trends{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.trend.wide{grid-column:span 2}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:18px;
  margin-top:6px}
.charttitle{font-size:12px;font-weight:600;color:#52606d;text-transform:uppercase}
.muted{color:#7b8794}
.zero{color:#2e7d32;font-weight:600;margin-top:40px}
.failedall{color:#c62828;font-weight:600}
.sub{color:#52606d;font-size:13px}
a{color:#1d4ed8;text-decoration:none}
svg text{font:11px system-ui,sans-serif;fill:#334e68}
.failed td:first-child{border-left:4px solid #c62828}
.module{color:#7b8794;font-size:11px}
.nowrap{white-space:nowrap}
.drill h3 .pg{color:#52606d;font-weight:500;font-size:14px}
td.phase{padding-left:26px;color:#52606d}
text.halo{paint-order:stroke;stroke:#fff;stroke-width:4px}
"""


def render(report: Mapping[str, Any], runs: Sequence[Mapping[str, Any]] = ()) -> str:
    """The whole page for ``report``; ``runs`` (oldest first, this one last) feed the trends."""
    drills = sorted(report.get("drills", []), key=_severity)
    body = [_header(report), "<main>", _stats(report), _table(drills)]
    body += ["<h2>Drills</h2>", *(_drill(d, i) for i, d in enumerate(drills))]
    if len(runs) > 1:
        body.append(_trends(runs))
    body += [_environment(report.get("environment", {})), "</main>"]
    title = f"pytest-pgdr report {report.get('run', {}).get('started', '')[:16]}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _severity(drill: Mapping[str, Any]) -> tuple[int, str]:
    """Failures first, then over budget, then the rest by name."""
    status = (drill.get("verdict") or {}).get("status")
    rank = 0 if drill.get("outcome") == "failed" else 1 if status in ("over", "unmeasured") else 2
    return rank, str(drill.get("id"))


# header, stats, table -------------------------------------------------------------------
def _header(report: Mapping[str, Any]) -> str:
    run, env = report.get("run", {}), report.get("environment", {})
    versions = ", ".join(f"{p['label']} ({p['version']})" for p in env.get("postgres", []))
    machine = env.get("machine", {})
    meta = (
        f"{escape(run.get('started', '')[:19].replace('T', ' '))} UTC &middot; "
        f"{escape(str(run.get('duration_s', '')))} s &middot; backend "
        f"{escape(str(env.get('backend')))} &middot; {escape(versions)} &middot; "
        f"{escape(str(machine.get('hostname', '')))} ({machine.get('cpus')} CPUs)"
    )
    return f"<header><h1>PostgreSQL DR drills</h1><div class=meta>{meta}</div></header>"


def _stats(report: Mapping[str, Any]) -> str:
    summary = report.get("summary", {})
    items = [
        ("drills", summary.get("drills", 0), "#1f2933"),
        ("passed", summary.get("passed", 0), OK),
        ("failed", summary.get("failed", 0), BAD if summary.get("failed") else MUTED),
        (
            "over budget",
            summary.get("over_budget", 0),
            BAD if summary.get("over_budget") else MUTED,
        ),
    ]
    cards = "".join(
        f'<div class=stat><b style="color:{color}">{value}</b><span>{name}</span></div>'
        for name, value, color in items
    )
    return f"<div class=cards>{cards}</div>"


def _pill(drill: Mapping[str, Any]) -> str:
    status = (drill.get("verdict") or {}).get("status", "no budget")
    text, color = VERDICTS.get(status, (status, MUTED))
    if drill.get("outcome") == "failed" and status not in ("over", "unmeasured"):
        text, color = "FAILED", BAD
    elif drill.get("outcome") == "skipped":
        text, color = "skipped", MUTED
    return f'<span class=pill style="background:{color}">{escape(text)}</span>'


def _names(d: Mapping[str, Any]) -> tuple[str, str]:
    """(test function, module) of a drill."""
    module, _, test = str(d.get("name") or d.get("id", "")).rpartition("::")
    return test, module


def _allowed(seconds: float | None) -> str:
    return "" if seconds is None else f"<div class=module>budget {format_duration(seconds)}</div>"


def _table(drills: Sequence[Mapping[str, Any]]) -> str:
    head = ("verdict", "drill", "PostgreSQL", "RTO", "write outage", "RPO", "throughput / lag")
    rows = []
    for i, d in enumerate(drills):
        rto = (d.get("rto") or {}).get("total_s")
        budget = d.get("budget") or {}
        test, module = _names(d)
        cls = ' class="failed"' if d.get("outcome") == "failed" else ""
        rows.append(
            f'<tr{cls}><td>{_pill(d)}</td><td><a href="#d{i}">{escape(test)}</a>'
            f"<div class=module>{escape(module)}</div></td>"
            f"<td class=nowrap>{escape(str(d.get('postgres') or '-'))}</td>"
            f"<td class=num><b>{format_duration(rto)}</b>{_allowed(budget.get('rto_s'))}</td>"
            f"<td class=num>{escape(outage_text(d.get('outage')))}</td>"
            f"<td class=num>{escape(rpo_text(d.get('rpo')))}{_allowed(budget.get('rpo_s'))}</td>"
            f"<td class=num>{escape(figure_text(d.get('figures') or {}))}</td></tr>"
        )
    header = "".join(f"<th>{h}</th>" for h in head)
    empty = "<tr><td colspan=7>No drill recorded a measurement.</td></tr>"
    return f"<h2>Summary</h2><table><tr>{header}</tr>{''.join(rows) or empty}</table>"


# one drill ------------------------------------------------------------------------------
def _drill(d: Mapping[str, Any], index: int) -> str:
    test, _ = _names(d)
    parts = [
        f'<section class=drill id="d{index}"><h3>{_pill(d)} {escape(test)} '
        f"<span class=pg>{escape(str(d.get('postgres') or ''))}</span></h3>",
        f"<div class=sub>{escape(d.get('id', ''))} &middot; PostgreSQL "
        f"{escape(str(d.get('postgres_version') or '-'))} &middot; backend "
        f"{escape(str(d.get('backend') or '-'))} &middot; {d.get('duration_s', 0):.1f} s"
        "</div>",
        _figures(d),
        timeline_svg(d),
        _checks(d),
        _lost(d),
        _logs(d),
        _message(d),
        "</section>",
    ]
    return "".join(parts)


def _figures(d: Mapping[str, Any]) -> str:
    over = {
        c["figure"] for c in (d.get("verdict") or {}).get("checks", []) if c["status"] == "over"
    }
    rto = (d.get("rto") or {}).get("total_s")
    items = [
        ("RTO", format_duration(rto), "RTO" in over),
        ("write outage", outage_text(d.get("outage")), False),
        ("RPO", rpo_text(d.get("rpo")), any(f.startswith("RPO") for f in over)),
    ]
    for name, fig in (d.get("figures") or {}).items():
        items.append((name, _figure_value(fig), False))
    cells = "".join(
        f'<div class="{"over" if bad else ""}"><span>{escape(name)}</span>'
        f"<b>{escape(value)}</b></div>"
        for name, value, bad in items
    )
    return f"<div class=figs>{cells}</div>"


def _figure_value(fig: Mapping[str, Any]) -> str:
    unit, value = fig.get("unit"), fig.get("value", 0)
    if unit == "B/s":
        return f"{format_bytes(value)}/s"
    if unit == "B":
        return format_bytes(value)
    if unit == "s":
        return format_duration(value)
    return f"{value:g} {unit}" if isinstance(value, int | float) else f"{value} {unit}"


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


def _checks(d: Mapping[str, Any]) -> str:
    checks = (d.get("verdict") or {}).get("checks", [])
    if not checks:
        return ""
    rows = []
    for c in checks:
        color = {"over": BAD, "unmeasured": BAD, "pass": OK}.get(c["status"], MUTED)
        status = {"over": "OVER", "unmeasured": "not measured", "pass": "ok"}.get(c["status"], "")
        indent = ' class="phase"' if c["figure"] not in ("RTO", "RPO (loss window)", "RPO") else ""
        rows.append(
            f"<tr><td{indent}>{escape(c['figure'])}</td><td class=num>"
            f"{escape(c['measured'])}</td><td class=num>{escape(c['allowed'])}</td>"
            f'<td style="color:{color};font-weight:600">{status}</td></tr>'
        )
    return (
        "<details open><summary>Budget: measured vs allowed</summary><table class=checks>"
        "<tr><th>figure</th><th>measured</th><th>allowed</th><th></th></tr>"
        f"{''.join(rows)}</table></details>"
    )


def _lost(d: Mapping[str, Any]) -> str:
    lost = (d.get("rpo") or {}).get("lost") or []
    if not lost:
        return ""
    rows = "".join(
        f"<tr><td class=num>{a['id']}</td><td>{escape(str(a.get('server_time')))}"
        f"</td><td class=num>{a.get('timeline')}</td><td>{escape(str(a.get('node')))}"
        f"</td></tr>"
        for a in lost
    )
    return (
        f"<details><summary>{len(lost)} acknowledged commits lost</summary>"
        "<table class=checks><tr><th>id</th><th>committed at (server)</th><th>timeline</th>"
        f"<th>node</th></tr>{rows}</table></details>"
    )


def _logs(d: Mapping[str, Any]) -> str:
    lines = d.get("log_lines") or []
    if not lines:
        return ""
    text = "\n".join(f"{e['node']}: {e['line']}" for e in lines)
    return (
        f"<details><summary>Server log: recovery milestones ({len(lines)} lines)</summary>"
        f"<pre>{escape(text)}</pre></details>"
    )


def _message(d: Mapping[str, Any]) -> str:
    if not d.get("message") or "over its recovery budget" in d["message"].split("\n")[0]:
        return ""
    return f"<details open><summary>Failure</summary><pre>{escape(d['message'])}</pre></details>"


# trends ---------------------------------------------------------------------------------
def _trends(runs: Sequence[Mapping[str, Any]]) -> str:
    series: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for index, run in enumerate(runs):
        for drill in run.get("drills", []):
            series.setdefault(drill["id"], []).append((index, drill))
    labels = _run_labels(runs)
    cards = [_trend_card(points, labels) for _, points in sorted(series.items())]
    return (
        f"<h2>Trends over {len(runs)} runs</h2><p class=sub>Each point is one run; red"
        " points are over budget, the dashed red line is the budget. Runs where the drill"
        f" failed for another reason are left out.</p><div class=trends>{''.join(cards)}"
        "</div>"
    )


def _run_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    stamps = [str(r.get("run", {}).get("started", "")) for r in runs]
    same_day = len({s[:10] for s in stamps}) == 1
    return [s[11:16] if same_day else s[5:10] for s in stamps]


def _trend_card(points: Sequence[tuple[int, Mapping[str, Any]]], labels: Sequence[str]) -> str:
    last = points[-1][1]
    test, module = _names(last)
    usable = [
        (i, d)
        for i, d in points
        if d.get("outcome") != "failed"
        or (d.get("verdict") or {}).get("status") in ("over", "unmeasured")
    ]
    if not usable:
        charts = [f"<p class=failedall>failed in all {len(points)} runs</p>"]
    else:
        charts = [_trend_chart("RTO", usable, labels, _rto_point)]
    if any(_rpo_point(d)[0] is not None for _, d in usable):
        charts.append(_trend_chart("RPO (loss window)", usable, labels, _rpo_point))
    skipped = len(points) - len(usable)
    note = f" &middot; {skipped} failed run(s) not plotted" if 0 < skipped < len(points) else ""
    wide = " wide" if len(charts) > 1 else ""
    return (
        f'<div class="trend{wide}"><h4>{escape(test)} <span class=pg>'
        f"{escape(str(last.get('postgres') or ''))}</span></h4><div class=module>"
        f"{escape(module)}{note}</div><div class=charts>{''.join(charts)}</div></div>"
    )


def _rto_point(d: Mapping[str, Any]) -> tuple[float | None, float | None]:
    return (d.get("rto") or {}).get("total_s"), (d.get("budget") or {}).get("rto_s")


def _rpo_point(d: Mapping[str, Any]) -> tuple[float | None, float | None]:
    return (d.get("rpo") or {}).get("window_s"), (d.get("budget") or {}).get("rpo_s")


def _trend_chart(
    what: str, points: Sequence[tuple[int, Mapping[str, Any]]], labels: Sequence[str], pick: Any
) -> str:
    measured = [(i, *pick(d)) for i, d in points]
    measured = [(i, v, b) for i, v, b in measured if v is not None]
    title = f"<div class=charttitle>{escape(what)}</div>"
    if not measured:
        return f"<div>{title}<p class=muted>not measured</p></div>"
    peak = max(v for _, v, _ in measured)
    if peak == 0 and all(b in (None, 0) for _, _, b in measured):
        return (
            f"<div>{title}<p class=zero>0 in all {len(measured)} runs: no acknowledged"
            " write lost</p></div>"
        )
    budgets = [b for _, _, b in measured if b is not None]
    top = nice_ceiling(max(peak, 1e-4) * 1.15)
    if budgets and max(budgets) <= top * 2:
        top = nice_ceiling(max([peak, *budgets]) * 1.1)
    return f"<div>{title}{_trend_svg(measured, labels, top)}</div>"


def _trend_svg(
    measured: Sequence[tuple[int, float, float | None]], labels: Sequence[str], top: float
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
    for i, v, b in measured:
        x, y = xy(i, v)
        color = BAD if b is not None and v > b else PALETTE[0]
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="3.5" fill="{color}"><title>'
            f"{escape(labels[i])}: {format_duration(v)}</title></circle>"
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


# environment ----------------------------------------------------------------------------
def _environment(env: Mapping[str, Any]) -> str:
    rows = [
        ("backend", env.get("backend")),
        ("image", env.get("image") or "-"),
        ("python", env.get("python")),
    ]
    rows += [
        (f"PostgreSQL {p['label']}", f"{p['version']} ({p['bindir']})")
        for p in env.get("postgres", [])
    ]
    rows += [(name, version or "-") for name, version in env.get("packages", {}).items()]
    machine = env.get("machine", {})
    rows.append(
        (
            "machine",
            f"{machine.get('platform')}, {machine.get('cpus')} CPUs, "
            f"{format_bytes(machine.get('memory_bytes'))} memory",
        )
    )
    rows += [(k, v) for k, v in env.get("settings", {}).items()]
    rows += [(k, v) for k, v in env.get("ci", {}).items()]
    cells = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f"<h2>Environment</h2><table>{cells}</table>"


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
