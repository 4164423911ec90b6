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
    worst_first = sorted(series.items(), key=lambda kv: (not _failed(kv[1][-1][1]), kv[0]))
    cards = [_trend_card(points, labels) for _, points in worst_first]
    return (
        f"<h2>Trends over {len(runs)} runs</h2><p class=sub>Each point is one run; red"
        " points are over budget, the dashed red line is the budget; a red cross is a run"
        " where the drill failed (at its value when one was measured)."
        f"</p><div class=trends>{''.join(cards)}</div>"
    )


def _run_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    stamps = [str(r.get("run", {}).get("started", "")) for r in runs]
    same_day = len({s[:10] for s in stamps}) == 1
    return [s[11:16] if same_day else s[5:10] for s in stamps]


def _failed(d: Mapping[str, Any]) -> bool:
    """Failed for a reason other than its budget (over budget is a value over the line)."""
    return d.get("outcome") == "failed" and (d.get("verdict") or {}).get("status") not in (
        "over",
        "unmeasured",
    )


def _trend_card(points: Sequence[tuple[int, Mapping[str, Any]]], labels: Sequence[str]) -> str:
    last = points[-1][1]
    test, module = drill_names(last)
    failed = {i for i, d in points if _failed(d)}
    charts = [trend_chart("RTO", points, labels, _rto_point, failed)]
    if any(_rpo_point(d)[0] is not None for _, d in points):
        charts.append(trend_chart("RPO (loss window)", points, labels, _rpo_point, failed))
    if any(_lost_point(d)[0] is not None for _, d in points):
        charts.append(trend_chart("commits lost", points, labels, _lost_point, failed, _count))
    for name in sorted({n for _, d in points for n in (d.get("figures") or {})}):
        if name in BUDGETED_FIGURES:
            charts.append(trend_chart(name, points, labels, _figure(name), failed))
    note = (
        f" &middot; failed in {len(failed)} of {len(points)} runs (red crosses)" if failed else ""
    )
    wide = " wide" if len(charts) > 1 else ""
    return (
        f'<div class="trend{wide}"><h4>{escape(test)} <span class=pg>'
        f"{escape(str(last.get('postgres') or ''))}</span></h4><div class=module>"
        f"{escape(module)}{note}</div><div class=charts>{''.join(charts)}</div></div>"
    )


# figures with a budget of their own besides RTO and RPO (data age: how old the newest
# restorable data is)
BUDGETED_FIGURES = ("data age",)


def _count(value: float) -> str:
    return f"{value:g}"


def _lost_point(d: Mapping[str, Any]) -> tuple[float | None, float | None]:
    lost = (d.get("rpo") or {}).get("lost_commits")
    budget = (d.get("budget") or {}).get("rpo_s")
    return lost, (0.0 if budget == 0 else None)


def _figure(name: str) -> Any:
    def pick(d: Mapping[str, Any]) -> tuple[float | None, float | None]:
        fig = (d.get("figures") or {}).get(name) or {}
        return fig.get("value"), (d.get("budget") or {}).get(name.replace(" ", "_") + "_s")

    return pick


def _rto_point(d: Mapping[str, Any]) -> tuple[float | None, float | None]:
    return (d.get("rto") or {}).get("total_s"), (d.get("budget") or {}).get("rto_s")


def _rpo_point(d: Mapping[str, Any]) -> tuple[float | None, float | None]:
    return (d.get("rpo") or {}).get("window_s"), (d.get("budget") or {}).get("rpo_s")
