"""Measurements, budgets, progress lines and report rendering: plain Python, no servers."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_pgdr.basics.clock import Stopwatch, TimingError
from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.progress import Progress
from pytest_pgdr.basics.units import parse_duration
from pytest_pgdr.cluster.serverlog import ServerLog
from pytest_pgdr.drill.budget import Budget, judge
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.report.data import (
    DrillResult,
    build,
    load_history,
    with_current,
)
from pytest_pgdr.report.html import render
from pytest_pgdr.report.junit import junit_properties
from pytest_pgdr.report.svg import nice_ceiling
from pytest_pgdr.report.text import summary_lines


def fake_clock(*readings: float) -> Callable[[], float]:
    values = iter(readings)
    return lambda: next(values)


def measured(
    *readings: float,
    phases: tuple[str, ...] = ("restore", "replay", "verify"),
) -> Measurement:
    """A measurement whose RTO clock reads ``readings`` (start, then one per phase)."""
    m = Measurement()
    m.rto = Stopwatch.started(clock=fake_clock(*readings))
    for name in phases[:-1]:
        m.rto.lap(name)
    m.rto.stop(phases[-1])
    return m


# RTO ----------------------------------------------------------------------------------
def test_phases_add_up_to_the_total_on_the_real_clock() -> None:
    m = Measurement()
    rto = m.declare_disaster()
    for i in range(5):
        sum(range(20_000 * (i + 1)))  # real work, no sleep
        rto.lap(f"phase {i}")
    rto.stop("verify")
    data = m.as_dict()["rto"]
    assert abs(sum(p["seconds"] for p in data["phases"]) - data["total_s"]) < 0.002
    assert all(p["seconds"] > 0 for p in data["phases"])


def test_zero_duration_fails_loudly() -> None:
    m = Measurement()
    m.rto = Stopwatch.started(clock=fake_clock(5.0, 5.0))
    with pytest.raises(TimingError, match="did not advance"):
        m.rto.lap("restore")
    with pytest.raises(TimingError, match="clock did not advance"):
        Measurement().record_throughput(100, seconds=0)


def test_throughput_from_the_restore_phase() -> None:
    m = measured(0.0, 2.0, 3.0, 3.5, phases=("restore base backup", "replay WAL", "verify"))
    assert m.record_throughput(100 * 2**20) == pytest.approx(50 * 2**20)
    assert m.figures["restore throughput"] == {"value": 50 * 2**20, "unit": "B/s"}
    assert m.figures["restored bytes"]["value"] == 100 * 2**20
    with pytest.raises(TimingError, match="no RTO phase named 'unzip'.*replay WAL"):
        m.record_throughput(1, phase="unzip")


def test_lag_rpo_and_log_lines(tmp_path: Path) -> None:
    m = Measurement()
    m.record_lag(seconds=0.25, nbytes=8192)
    m.record_rpo(lost_commits=0)
    log = tmp_path / "postgres.log"
    log.write_text(
        "2026-01-01 00:00:00.001 UTC [7] LOG:  redo starts at 0/2000028\n"
        "2026-01-01 00:00:00.002 UTC [8] FATAL:  the database system is starting up\n"
        "2026-01-01 00:00:00.003 UTC [7] LOG:  checkpoint complete\n"
        "2026-01-01 00:00:00.004 UTC [7] LOG:  selected new timeline ID: 2\n"
    )
    node = SimpleNamespace(name="restore1", log=ServerLog(log))
    m.attach_logs([node])
    m.attach_logs([node])  # once per node
    data = m.as_dict()
    assert data["figures"]["replica lag"] == {"value": 0.25, "unit": "s"}
    assert data["rpo"] == {"lost_commits": 0, "window_s": 0.0, "wal_bytes": None, "lost": []}
    assert [e["line"].split("LOG:  ")[1] for e in data["log_lines"]] == [
        "redo starts at 0/2000028",
        "selected new timeline ID: 2",
    ]


# budgets ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30),
        ("2m", 120),
        ("1.5h", 5400),
        ("0", 0),
        (12, 12),
        ("3", 3),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["fast", "-1s", "30 parsecs", ""])
def test_bad_duration_says_what_is_valid(text: str) -> None:
    with pytest.raises(ConfigError, match="250ms, 30s, 2m"):
        parse_duration(text)


def test_marker_wins_over_defaults() -> None:
    budget = Budget.build(
        {"rto": "30s"}, {"rto": (60.0, "ini pgdr_rto"), "rpo": (0.0, "command line")}
    )
    assert (budget.rto_s, budget.rpo_s) == (30.0, 0.0)
    assert budget.sources == {"rto": "marker", "rpo": "command line"}


def test_verdict_side_by_side_phase_by_phase() -> None:
    m = measured(0.0, 0.5, 2.0, 2.1)
    budget = Budget.build({"rto": "1s", "phases": {"replay": "1s", "restore": "1s"}}, {})
    verdict = judge(budget, m.as_dict())
    assert verdict.status == "over"
    assert [c.figure for c in verdict.over] == ["RTO", "replay"]
    message = verdict.message("test_drill")
    assert "test_drill is over its recovery budget (RTO, replay)" in message
    assert re.search(r"RTO\s+2\.10 s\s+1\.00 s\s+<-- OVER BUDGET", message)
    assert re.search(r"  replay\s+1\.50 s\s+1\.00 s\s+<-- OVER BUDGET", message)
    assert re.search(r"  restore\s+500 ms\s+1\.00 s$", message, re.M)


def test_rpo_zero_fails_on_any_lost_commit() -> None:
    m = Measurement()
    m.record_rpo({"lost_commits": 2, "window_s": 0.02, "wal_bytes": 300, "lost": []})
    verdict = judge(Budget(rpo_s=0.0, sources={"rpo": "marker"}), m.as_dict())
    assert verdict.status == "over"
    assert re.search(r"commits lost\s+2\s+0  <-- OVER BUDGET", verdict.message())


def test_unmeasured_reads_the_same_from_ini_and_marker_but_fails_only_a_promise() -> None:
    for source in ("ini pgdr_rpo", "marker"):
        verdict = judge(Budget(rpo_s=0.0, sources={"rpo": source}), {})
        assert verdict.status == "unmeasured", source  # reported, the same way, from both
    assert judge(Budget(rpo_s=0.0, sources={"rpo": "ini pgdr_rpo"}), {}).over == []
    promised = judge(Budget(rpo_s=0.0, sources={"rpo": "marker"}), {})
    assert promised.over and "NOT MEASURED" in promised.message()


def test_a_marker_can_say_a_drill_has_no_rpo_objective() -> None:
    budget = Budget.build({"rpo": "none"}, {"rpo": (0.0, "ini pgdr_rpo")})
    assert budget.rpo_s is None and budget.sources["rpo"] == "marker"
    lossy = {"rpo": {"window_s": 3.0, "lost_commits": 25}}
    assert judge(budget, lossy).over == []


# progress -----------------------------------------------------------------------------
def test_progress_is_throttled_and_ends_with_a_line() -> None:
    out = io.StringIO()
    p = Progress(
        "restoring",
        total=4 * 2**20,
        stream=out,
        every=2.0,
        clock=fake_clock(0.0, 1.0, 2.5, 3.0, 4.0),
    )
    p.advance(2**20)  # t=1.0: too soon
    p.advance(2**20)  # t=2.5: shown
    p.advance(2**20)  # t=3.0: too soon
    assert p.finish() == 4.0
    lines = out.getvalue().strip().splitlines()
    assert lines == [
        "pgdr: restoring: 2.0 MB of 4.0 MB (50%), 819.2 kB/s, 2.5 s",
        "pgdr: restoring: 3.0 MB of 4.0 MB (75%), 768.0 kB/s, 4.0 s - done",
    ]


# reports ------------------------------------------------------------------------------
def drill(nodeid: str, outcome: str = "passed", budget: str | None = "3s") -> DrillResult:
    m = measured(0.0, 0.5, 2.0, 2.1)
    m.context.update(postgres="pg18-embedded", backend="local", postgres_version="18.1")
    m.record_throughput(2**30, seconds=0.5)
    b = Budget.build({"rto": budget} if budget else {}, {})
    m.budget, m.verdict = b.as_dict(), judge(b, m.as_dict()).as_dict()
    return DrillResult(nodeid, outcome, 2.5, m.as_dict(), "boom" if outcome == "failed" else "")


def test_summary_table_has_one_row_a_drill_and_its_phases() -> None:
    lines = summary_lines(
        [
            drill("s/test_a.py::test_a[pg18-embedded]"),
            drill("s/test_b.py::test_b[pg18-embedded]", budget="1s"),
        ]
    )
    assert lines[0].split() == [
        "drill",
        "module",
        "target",
        "RTO",
        "write",
        "outage",
        "RPO",
        "throughput/lag",
        "verdict",
    ]
    assert lines[1].endswith("OVER BUDGET: RTO")  # over budget before the rest
    assert lines[3].split()[:4] == ["test_a", "test_a", "local/pg18-embedded", "2.10"]
    assert lines[3].endswith("2.0 GB/s        ok")
    assert lines[4] == "    RTO phases: restore 500 ms, replay 1.50 s, verify 100 ms"


def test_json_report_and_junit_properties() -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    report = build(
        [drill("s/t.py::test_x[pg18-embedded]", "failed", "1s")],
        {"backend": "local"},
        started,
        started,
        1,
    )
    json.dumps(report)
    entry = report["drills"][0]
    assert report["schema_version"] == 2 and report["summary"]["over_budget"] == 1
    assert (entry["name"], entry["postgres"], entry["message"]) == (
        "t.py::test_x",
        "pg18-embedded",
        "boom",
    )
    props = dict(junit_properties(drill("t.py::t").data))
    assert props["pgdr_rto_s"] == 2.1 and props["pgdr_phase_replay_s"] == 1.5
    assert props["pgdr_restore_throughput_bytes_per_s"] == 2 * 2**30
    assert (props["pgdr_budget_rto_s"], props["pgdr_verdict"]) == (3.0, "pass")


def test_recorded_values_reach_junit_and_the_html() -> None:
    data = {
        "values": {
            "backup": {"label": "20261122T0200F", "stop_lsn": "0/5000100", "tool": ""},
            "checks": {"orders": "ok: 3000 rows (at least 1000)"},
            "replayed to": "0/6000000",
        }
    }
    props = dict(junit_properties(data))
    assert props["pgdr_backup_label"] == "20261122T0200F"
    assert props["pgdr_checks_orders"] == "ok: 3000 rows (at least 1000)"
    assert props["pgdr_replayed_to"] == "0/6000000"
    assert "pgdr_backup_tool" not in props  # empty values are left out
    started = datetime(2026, 1, 2, tzinfo=UTC)
    result = drill("s/t.py::test_nightly[pg15-system]")
    result = dataclasses.replace(result, data={**result.data, **data})
    page = render(build([result], {}, started, started, 0))
    assert "Recorded: the backup, the checks" in page
    assert "backup stop_lsn</td><td>0/5000100" in page


def test_history_skips_foreign_files_and_counts_this_run_once(tmp_path: Path) -> None:
    started = datetime(2026, 1, 2, tzinfo=UTC)
    current = build([drill("t.py::t")], {}, started, started, 0)
    (tmp_path / "now.json").write_text(json.dumps(current))
    (tmp_path / "other.json").write_text('{"schema_version": 99}')
    (tmp_path / "broken.json").write_text("{")
    notes: list[str] = []
    runs = with_current(load_history(tmp_path, warn=notes.append), current)
    assert len(runs) == 1 and len(notes) == 2


def test_history_of_the_right_version_but_wrong_shape_is_skipped_naming_the_file(
    tmp_path: Path,
) -> None:
    started = datetime(2026, 1, 2, tzinfo=UTC)
    good = build([drill("t.py::t")], {}, started, started, 0)
    (tmp_path / "a_good.json").write_text(json.dumps(good))
    bad = {
        "no_run": {"schema_version": 1, "drills": []},
        "drills_text": dict(good, drills="oops"),
        "drill_list": dict(good, drills=[["t.py::t"]]),
        "rto_text": dict(good, drills=[dict(good["drills"][0], rto="2 s")]),
        "budget_text": dict(good, drills=[dict(good["drills"][0], budget={"rto_s": "30s"})]),
        "verdict_list": dict(good, drills=[dict(good["drills"][0], verdict=["over"])]),
    }
    for name, report in bad.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
    notes: list[str] = []
    history = load_history(tmp_path, warn=notes.append)
    assert len(history) == 1 and len(notes) == len(bad)
    for name, note in zip(sorted(bad), notes, strict=True):
        assert f"{tmp_path / name}.json: schema version 2 but" in note, note
    current = build([drill("t.py::t")], {}, started, datetime(2026, 1, 3, tzinfo=UTC), 0)
    assert "Trends over 2 runs" in render(current, with_current(history, current))


def test_html_is_self_contained_with_timeline_and_trends() -> None:
    runs = []
    for day, total in enumerate((2.1, 2.4, 3.9), start=1):
        started = datetime(2026, 1, day, tzinfo=UTC)
        m = drill("t.py::test_t[pg18-embedded]", budget="3s")
        data = dict(m.data, rto={"total_s": total, "phases": m.data["rto"]["phases"]})
        runs.append(build([DrillResult(m.nodeid, "passed", 1, data)], {}, started, started, 0))
    page = render(runs[-1], runs)
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "Trends over 3 runs" in page and page.count("<svg") == 2  # timeline, RTO trend
    assert "budget 3.00 s" in page and "stroke-dasharray" in page


def test_axis_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0.129, 0.3, 2.1, 7, 45)] == [0.2, 0.5, 2.5, 10, 50]
    assert time.monotonic() > 0


def test_the_target_cell_names_the_backup_tool_a_drill_ran_through() -> None:
    from pytest_pgdr.report.text import target_text

    context = {"backend": "local", "postgres": "pg15-system", "backup_tool": "pgbackrest 2.45"}
    drill = DrillResult("scenarios/test_x.py::test_y", "passed", 1.0, {"context": context})
    assert target_text(drill) == "local/pg15-system via pgbackrest 2.45"
    plain = DrillResult("scenarios/test_x.py::test_y", "passed", 1.0, {"context": {}})
    assert target_text(plain) == "-"


def test_recorded_values_never_show_a_secret() -> None:
    from pytest_pgdr.basics.errors import MASK, register_secret

    register_secret("s3cr3t-value-xyz")
    props = dict(junit_properties({"values": {"source": "host=db password=s3cr3t-value-xyz"}}))
    assert props["pgdr_source"] == f"host=db password={MASK}"
