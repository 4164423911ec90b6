"""The HTML report: one self-contained file (inline CSS and SVG; no script, server or CDN).

Per drill: its verdict, a timeline of the RTO phases with the client's write outage under it,
the budget checks and the server log lines that matter. Given earlier JSON reports, trend
charts of RTO and RPO per drill across runs, with the budget lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_pgdr.basics.units import format_bytes, format_duration
from pytest_pgdr.report.first_screen import CSS as FIRST_CSS
from pytest_pgdr.report.first_screen import first_screen
from pytest_pgdr.report.junit import flat_values
from pytest_pgdr.report.svg import BAD, MUTED, OK, timeline_svg
from pytest_pgdr.report.text import drill_names, figure_text, outage_text, rpo_text
from pytest_pgdr.report.trends import trends_section

VERDICTS = {
    "pass": ("within budget", OK),
    "over": ("OVER BUDGET", BAD),
    "unmeasured": ("budget not measured", BAD),
    "no budget": ("no budget", MUTED),
}
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
    body = [_header(report), "<main>", first_screen(report, runs or [report])]
    body += [_stats(report), _table(drills), "<h2>Drills</h2>"]
    sections = [(d, _drill(d, i)) for i, d in enumerate(drills)]
    body += [html for d, html in sections if _severity(d)[0] < 2]
    rest = [html for d, html in sections if _severity(d)[0] == 2]
    if rest:  # passing drills collapsed: the page opens on what broke
        body.append(
            f"<details class=passing><summary>{len(rest)} passing or skipped drills</summary>"
            f"{''.join(rest)}</details>"
        )
    if len(runs) > 1:
        body.append(trends_section(runs))
    body += [_environment(report.get("environment", {})), "</main>"]
    title = f"pytest-pgdr report {report.get('run', {}).get('started', '')[:16]}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{CSS}{FIRST_CSS}</style></head><body>{''.join(body)}</body></html>\n"
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
        ("skipped", summary.get("skipped", 0), MUTED),
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


def _allowed(seconds: float | None) -> str:
    return "" if seconds is None else f"<div class=module>budget {format_duration(seconds)}</div>"


def _table(drills: Sequence[Mapping[str, Any]]) -> str:
    head = ("verdict", "drill", "PostgreSQL", "RTO", "write outage", "RPO", "throughput / lag")
    rows = []
    for i, d in enumerate(drills):
        rto = (d.get("rto") or {}).get("total_s")
        budget = d.get("budget") or {}
        test, module = drill_names(d)
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
    test, _ = drill_names(d)
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
        _values(d),
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


def _values(d: Mapping[str, Any]) -> str:
    pairs = flat_values(d.get("values") or {})
    if not pairs:
        return ""
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(value)}</td></tr>" for name, value in pairs
    )
    return (
        "<details open><summary>Recorded: the backup, the checks</summary>"
        f"<table class=checks>{rows}</table></details>"
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


# environment ----------------------------------------------------------------------------
def _environment(env: Mapping[str, Any]) -> str:
    rows = [
        ("backend", env.get("backend")),
        ("image", env.get("image") or "-"),
        ("python", env.get("python")),
    ]
    rows += [("used", v) for v in env.get("versions_used", [])]
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
    cells = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(plain(v))}</td></tr>" for k, v in rows
    )
    return f"<h2>Environment</h2><table>{cells}</table>"


def plain(value: Any) -> str:
    """A setting as a person writes it: ``embedded, 15``, ``off``, ``-`` (no Python reprs)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple | set):
        return ", ".join(plain(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {plain(v)}" for k, v in value.items()) or "-"
    return str(value)
