"""The trends section of the HTML report: RTO and RPO per drill across earlier runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_pgdr.report.svg import trend_chart
from pytest_pgdr.report.text import drill_names


def trends_section(runs: Sequence[Mapping[str, Any]]) -> str:
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
    test, module = drill_names(last)
    usable = [
        (i, d)
        for i, d in points
        if d.get("outcome") != "failed"
        or (d.get("verdict") or {}).get("status") in ("over", "unmeasured")
    ]
    if not usable:
        charts = [f"<p class=failedall>failed in all {len(points)} runs</p>"]
    else:
        charts = [trend_chart("RTO", usable, labels, _rto_point)]
    if any(_rpo_point(d)[0] is not None for _, d in usable):
        charts.append(trend_chart("RPO (loss window)", usable, labels, _rpo_point))
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
