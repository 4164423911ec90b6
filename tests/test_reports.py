"""Budgets and reports through real pytest sub-sessions: summary, JSON, JUnit, HTML, xdist."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

PGDR = ("--pgdr", "--pgdr-scenarios=none", "-p", "no:cacheprovider")

DRILLS = '''
import time

import pytest

from pytest_pgdr.basics.clock import Stopwatch


def laps(measure, *readings, names=("restore", "replay", "verify")):
    """RTO phases from a fake clock: deterministic figures for the budget checks."""
    values = iter(readings)
    measure.rto = Stopwatch.started(clock=lambda: next(values))
    for name in names[:-1]:
        measure.rto.lap(name)
    measure.rto.stop(names[-1])


@pytest.mark.pgdr(rto="3s", rpo=0)
def test_within_budget(pgdr_measure):
    laps(pgdr_measure, 0.0, 0.5, 2.0, 2.1)
    pgdr_measure.record_rpo(lost_commits=0)
    pgdr_measure.record_throughput(2**30, seconds=0.5)


@pytest.mark.pgdr(rto="1s", phases={"replay": "1s"})
def test_over_budget(pgdr_measure):
    laps(pgdr_measure, 0.0, 0.5, 2.0, 2.1)


@pytest.mark.pgdr(rpo=0)
def test_lost_commits(pgdr_measure):
    laps(pgdr_measure, 0.0, 0.1, 0.2, 0.3)
    pgdr_measure.record_rpo({"lost_commits": 3, "window_s": 0.06, "wal_bytes": 4096,
                             "lost": [{"id": 7, "server_time": "t", "timeline": 1}]})


@pytest.mark.pgdr
def test_injected_delay(pgdr_measure):
    independent = time.monotonic()
    rto = pgdr_measure.declare_disaster()
    time.sleep(0.2)  # the injected delay: a fake "restore" phase
    rto.lap("restore")
    rto.stop("verify")
    pgdr_measure.record("independent_s", time.monotonic() - independent)
'''


def drills_by_test(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["id"].split("::")[-1].split("[")[0]: d for d in report["drills"]}


def junit_properties(path: Path) -> dict[str, dict[str, str]]:
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        out[case.get("name", "").split("[")[0]] = props
    return out


def check_run(result: pytest.RunResult, root: Path) -> None:
    """What every run of DRILLS must show, with or without xdist."""
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*pgdr recovery times*",
            "drill*target*RTO*verdict",  # 80 columns: the rest goes under each row
            "test_lost_commits *300 ms*OVER BUDGET: RPO, commits lost",
            "    RTO phases: restore 100 ms, replay 100 ms, verify 100 ms",
            "    module: test_drills; RPO: 3 lost, 60 ms, 4.0 kB WAL",
            "test_over_budget *2.10 s*OVER BUDGET: RTO, replay",
            "    RTO phases: restore 500 ms, replay 1.50 s, verify 100 ms",
            "test_injected_delay *",
            "*RTO phases: restore 2?? ms, verify *",
            "test_within_budget *2.10 s*ok",
            "    RTO phases: restore 500 ms, replay 1.50 s, verify 100 ms",
            "    module: test_drills; RPO: 0 lost; throughput/lag: 2.0 GB/s",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_over_budget is over its recovery budget (RTO, replay).",
            "*figure*measured*allowed",
            "*RTO*2.10 s*1.00 s  <-- OVER BUDGET",
            "*  restore*500 ms*-",
            "*  replay*1.50 s*1.00 s  <-- OVER BUDGET",
        ]
    )
    report = json.loads((root / "out" / "report.json").read_text())
    drills = drills_by_test(report)
    assert report["schema_version"] == 2 and report["summary"]["over_budget"] == 2
    assert report["summary"]["failed"] == 0  # over budget is counted once
    assert drills["test_over_budget"]["verdict"]["status"] == "over"
    assert drills["test_within_budget"]["rpo"]["lost_commits"] == 0
    props = junit_properties(root / "junit.xml")
    assert props["test_within_budget"]["pgdr_rto_s"] == "2.1"
    assert props["test_within_budget"]["pgdr_rpo_lost_commits"] == "0"
    assert props["test_over_budget"]["pgdr_verdict"] == "over"
    assert props["test_lost_commits"]["pgdr_rpo_wal_bytes"] == "4096"


def test_summary_json_junit_html_and_budget_failures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    result = pytester.runpytest(
        *PGDR, "--pgdr-report=out/report.json", "--pgdr-html=out/r.html", "--junitxml=junit.xml"
    )
    check_run(result, pytester.path)
    assert "Traceback" not in result.stdout.str() and "budget.py" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "pgdr: JSON report written to */out/report.json",
            "pgdr: HTML report written to */out/r.html",
        ]
    )
    page = (pytester.path / "out" / "r.html").read_text()
    assert "OVER BUDGET" in page and "test_injected_delay" in page


def test_rto_matches_an_independent_stopwatch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    pytester.runpytest(*PGDR, "--pgdr-report=out/report.json", "-k", "injected")
    drill = drills_by_test(json.loads((pytester.path / "out/report.json").read_text()))
    injected = drill["test_injected_delay"]
    phases = {p["name"]: p["seconds"] for p in injected["rto"]["phases"]}
    assert abs(injected["rto"]["total_s"] - injected["values"]["independent_s"]) < 0.05
    assert 0.2 <= phases["restore"] < 0.25
    assert abs(sum(phases.values()) - injected["rto"]["total_s"]) < 0.002


def test_xdist_figures_travel_to_the_controller(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    result = pytester.runpytest_subprocess(
        *PGDR, "-n", "2", "--pgdr-report=out/report.json", "--junitxml=junit.xml"
    )
    result.stdout.fnmatch_lines(["*2 workers [[]4 items[]]*"])
    check_run(result, pytester.path)
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert len(report["drills"]) == 4


def test_ini_defaults_and_the_header(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npgdr_rto = 2s\npgdr_rpo = 0\n")
    pytester.makepyfile("""
import pytest
from pytest_pgdr.basics.clock import Stopwatch

def fake(measure, total):
    values = iter([0.0, total])
    measure.rto = Stopwatch.started(clock=lambda: next(values))
    measure.rto.stop("restore")

def test_default_budget(pgdr_measure):
    fake(pgdr_measure, 2.5)

@pytest.mark.pgdr(rto="5s")
def test_marker_wins(pgdr_measure):
    fake(pgdr_measure, 2.5)

def test_measures_nothing(pgdr_measure):
    pass
""")
    result = pytester.runpytest(*PGDR, "--pgdr-rpo=5m")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "pgdr: budgets rto 2.00 s (ini pgdr_rto), rpo 5.0 min (command line); a drill's"
            " marker wins",
            "*test_default_budget is over its recovery budget (RTO)*",
        ]
    )


def test_bad_budget_values_are_clear(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PGDR, "--pgdr-rto=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Bad value 'soon' for --pgdr-rto*250ms, 30s, 2m*"])
    pytester.makepyfile("""
import pytest

@pytest.mark.pgdr(rto="30 parsecs")
def test_typo(pgdr_measure):
    raise AssertionError("the drill must not run")

@pytest.mark.pgdr(rto="30s")
def test_no_measurement():
    pass
""")
    result = pytester.runpytest(*PGDR)
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the pgdr marker of *::test_typo is wrong: Bad value '30 parsecs' for rto=*",
            "*test_no_measurement sets a budget but measures nothing*",
        ]
    )
    assert "the drill must not run" not in result.stdout.str()


def test_history_feeds_the_trend_charts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    for night in (1, 2):
        pytester.runpytest(*PGDR, f"--pgdr-report=history/night{night}.json")
    result = pytester.runpytest(
        *PGDR,
        "--pgdr-report=history/night3.json",
        "--pgdr-history=history",
        "--pgdr-html=report.html",
    )
    result.stdout.fnmatch_lines(["pgdr: HTML report written to *report.html (2 earlier runs*"])
    page = (pytester.path / "report.html").read_text()
    assert "Trends over 3 runs" in page
    assert page.count('<div class="trend') == 4
    assert page.count("<div class=charttitle>RTO</div>") == 4
    assert page.count("<div class=charttitle>RPO (loss window)</div>") == 2
    assert "0 in all 3 runs: no acknowledged write lost" in page
    assert "<title>budget 1.00 s</title>" in page


def test_progress_reaches_the_terminal_through_capture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
def test_long_load(pgdr_measure):
    p = pgdr_measure.progress("loading rows", total=10, unit="rows")
    p.every = 0
    p.update(5)
    p.finish()
""")
    for extra in ((), ("-n", "2")):
        result = pytester.runpytest_subprocess(*PGDR, *extra)
        result.assert_outcomes(passed=1)
        result.stderr.fnmatch_lines(
            [
                "pgdr: loading rows: 5 of 10 rows (50%), *",
                "pgdr: loading rows: 5 of 10 rows (50%), * - done",
            ]
        )


def test_real_restore_attaches_the_log_lines_that_matter(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
import pytest
from pytest_pgdr import Lsn, RecoveryTarget

@pytest.mark.pgdr(rto="1m")
def test_pitr(pgdr, pgdr_primary, pgdr_measure):
    backup = pgdr.backup(pgdr_primary)
    rp = pgdr_primary.scalar("SELECT pg_create_restore_point('rp')")
    pgdr.wait_archived(pgdr_primary, Lsn.parse(str(rp)))
    rto = pgdr_measure.declare_disaster()
    pgdr.restore(backup, RecoveryTarget.name("rp"), stopwatch=rto)
    rto.stop("verify")
    pgdr_measure.record_throughput(backup.size_bytes())
""")
    result = pytester.runpytest(*PGDR, "--pgdr-report=r.json", "--junitxml=j.xml")
    result.assert_outcomes(passed=1)
    drill = json.loads((pytester.path / "r.json").read_text())["drills"][0]
    lines = "\n".join(f"{e['node']}: {e['line']}" for e in drill["log_lines"])
    for milestone in (
        "restore1: .*consistent recovery state reached",
        'restore1: .*recovery stopping at restore point "rp"',
        "restore1: .*selected new timeline ID: 2",
        "restore1: .*database system is ready to accept connections",
    ):
        assert re.search(milestone, lines), lines
    assert "starting up" not in lines
    assert drill["figures"]["restore throughput"]["value"] > 0
    assert drill["postgres_version"] and drill["backend"] == "local"
    props = next(iter(junit_properties(pytester.path / "j.xml").values()))
    assert float(props["pgdr_restore_throughput_bytes_per_s"]) > 0


DOCS = Path(__file__).resolve().parent.parent / "docs"


def documented_fields(section: str) -> set[str]:
    """The first-column field names of the table under ``section`` in report-schema.md."""
    text = (DOCS / "report-schema.md").read_text().split(section, 1)[1]
    table = text.split("\n\n", 2)[1]
    return {
        name for row in table.splitlines() for name in re.findall(r"`(\w+)`", row.split("|")[1])
    }


def test_report_schema_doc_matches_a_real_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    pytester.runpytest(*PGDR, "--pgdr-report=r.json", "-k", "within or injected")
    report = json.loads((pytester.path / "r.json").read_text())
    assert set(report) == documented_fields("## Top level")
    assert set(report["run"]) == documented_fields("### `run`")
    assert set(report["environment"]) == documented_fields("### `environment`")
    assert set(report["drills"][0]) == documented_fields("## A drill (`drills[]`)")


def test_nightly_workflow_uses_real_flags(pytester: pytest.Pytester) -> None:
    text = (DOCS / "nightly.md").read_text()
    workflow = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    flags = set(re.findall(r"--pgdr[\w-]*", workflow))
    assert {"--pgdr-report", "--pgdr-history", "--pgdr-html"} <= flags
    helptext = pytester.runpytest("--help").stdout.str()
    assert all(flag in helptext for flag in flags), flags - set(re.findall(r"--[\w-]+", helptext))
    ini = text.split("```ini\n", 1)[1].split("```", 1)[0]
    pytester.makeini(ini)
    result = pytester.runpytest(*PGDR, "--collect-only")
    result.stdout.fnmatch_lines(["pgdr: budgets rto 60.00 s (ini pgdr_rto), rpo 0 ms (ini*"])
