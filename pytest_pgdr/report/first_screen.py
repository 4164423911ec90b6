"""The first screen of the HTML report: is last night's DR healthy, and if not, what broke and
since when; what changed since the previous run; which run this is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_pgdr.report.svg import BAD, OK
from pytest_pgdr.report.text import drill_names

CSS = """
.verdict{border-radius:8px;padding:12px 18px;color:#fff;font-size:18px;font-weight:700;
  margin:0 0 12px}
.problems{list-style:none;padding:0;margin:0}
.problems li{background:#fff;border-left:5px solid #c62828;border-radius:6px;margin:8px 0;
  padding:8px 12px;box-shadow:0 1px 2px #0002}
.problems .why{font-family:ui-monospace,monospace;font-size:12.5px;color:#7f1d1d;
  overflow-wrap:anywhere;margin-top:3px}
.since{color:#52606d;font-size:12px}
.changes{display:flex;gap:10px;flex-wrap:wrap;margin:10px 0}
.changes div{background:#fff;border-radius:6px;padding:6px 12px;box-shadow:0 1px 2px #0002}
.identity{font-size:12.5px;color:#3e4c59;margin:10px 0;overflow-wrap:anywhere}
.identity b{color:#1f2933}
@media (max-width:600px){main{padding:12px}header{padding:14px 12px}.stat{min-width:90px}
  table{display:block;overflow-x:auto}}
"""


def key(drill: Mapping[str, Any]) -> tuple[str, str]:
    """A drill across runs: its name and installation (node ids may move)."""
    return str(drill.get("name") or drill.get("id")), str(drill.get("postgres") or "")


def broken(drill: Mapping[str, Any]) -> bool:
    return drill.get("outcome") == "failed"


def over(drill: Mapping[str, Any]) -> bool:
    return (drill.get("verdict") or {}).get("status") in ("over", "unmeasured")


def why(drill: Mapping[str, Any]) -> str:
    """One line: the exception's first line, or the figures over budget."""
    if over(drill):
        checks = (drill.get("verdict") or {}).get("checks", [])
        parts = [
            f"{c['figure']} {c['measured']} > allowed {c['allowed']}"
            for c in checks
            if c.get("status") in ("over", "unmeasured")
        ]
        return "over budget: " + "; ".join(parts)
    reason = drill.get("reason")
    if reason is None:
        reason = next((x for x in str(drill.get("message") or "").splitlines() if x.strip()), "")
    return str(reason).strip() or "failed (no message)"


def since(drill: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]]) -> str:
    """'new tonight' or 'failing since <date> (N runs in a row)', from the history."""
    streak, first = 1, None
    for run in reversed(earlier):
        found = next((d for d in run.get("drills", []) if key(d) == key(drill)), None)
        if found is None or not broken(found):
            break
        streak += 1
        first = str(run.get("run", {}).get("started", ""))[:16].replace("T", " ")
    if first is None:
        return "new in this run" if earlier else ""
    return f"failing since {first} UTC ({streak} runs in a row)"


def first_screen(report: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> str:
    drills = report.get("drills", [])
    earlier = list(runs[:-1]) if len(runs) > 1 else []
    bad = sorted((d for d in drills if broken(d)), key=lambda d: (over(d), str(d.get("id"))))
    counted = len([d for d in drills if d.get("outcome") != "skipped"])
    if bad:
        failed = len([d for d in bad if not over(d)])
        headline = (
            f"DR not healthy: {failed} failed, {len(bad) - failed} over budget of {counted} drills"
        )
        color = BAD
    else:
        headline, color = f"DR healthy: all {counted} drills passed", OK
    parts = [f'<div class=verdict style="background:{color}">{escape(headline)}</div>']
    if bad:
        items = []
        for d in bad:
            test, module = drill_names(d)
            when = since(d, earlier)
            pg = str(d.get("postgres") or "")
            items.append(
                f"<li><b>{escape(test)}</b> <span class=since>"
                f"{' &middot; '.join(escape(x) for x in (module, pg, when) if x)}"
                "</span>"
                f"<div class=why>{escape(why(d))}</div></li>"
            )
        parts.append(f"<ul class=problems>{''.join(items)}</ul>")
    if earlier:
        parts.append(_changes(drills, earlier[-1]))
    parts.append(identity(report))
    return f"<section class=first>{''.join(parts)}</section>"


def _changes(drills: Sequence[Mapping[str, Any]], previous: Mapping[str, Any]) -> str:
    before = {key(d): broken(d) for d in previous.get("drills", [])}
    now = {key(d): broken(d) for d in drills}
    groups = {
        "new failures": [k for k, b in now.items() if b and not before.get(k, False)],
        "still failing": [k for k, b in now.items() if b and before.get(k, False)],
        "fixed": [k for k, b in now.items() if not b and before.get(k, False)],
    }
    when = str(previous.get("run", {}).get("started", ""))[:16].replace("T", " ")
    cells = "".join(
        f"<div><b>{len(ks)}</b> {name}"
        + (f": {escape(', '.join(k[0].split('::')[-1] for k in ks))}" if ks else "")
        + "</div>"
        for name, ks in groups.items()
    )
    return f"<div class=changes title='compared with the run of {escape(when)} UTC'>{cells}</div>"


def identity(report: Mapping[str, Any]) -> str:
    run, env = report.get("run", {}), report.get("environment", {})
    rows = []
    git = run.get("git")
    if git:
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        rows.append(
            f"<b>commit</b> {escape(str(git.get('commit', ''))[:12])}"
            f" on {escape(str(git.get('branch') or '?'))}{dirty}"
        )
    if run.get("ci_url"):
        url = escape(str(run["ci_url"]))
        rows.append(f'<b>CI run</b> <a href="{url}">{url}</a>')
    rows.append(f"<b>command</b> <code>{escape(str(run.get('command', '')))}</code>")
    versions = env.get("versions_used") or []
    if versions:
        rows.append(f"<b>versions</b> {escape(', '.join(str(v) for v in versions))}")
    return f"<div class=identity>{'<br>'.join(rows)}</div>"
