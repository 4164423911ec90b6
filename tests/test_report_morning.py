"""Reports an on-call engineer trusts the morning after (issue 16): the terminal summary at
pytest's width, reasons in the JSON, JUnit names, kept directories, short reprs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_pgdr.plugin.collector import junit_classname
from pytest_pgdr.report.data import SCHEMA_VERSION, load_history

PGDR = ("--pgdr", "--pgdr-scenarios=none", "-p", "no:cacheprovider")

DRILLS = """
import pytest

from pytest_pgdr.basics.clock import Stopwatch


def laps(measure, *readings, names=("restore base backup", "replay", "verify")):
    values = iter(readings)
    measure.rto = Stopwatch.started(clock=lambda: next(values))
    for name in names[:-1]:
        measure.rto.lap(name)
    measure.rto.stop(names[-1])


@pytest.mark.pgdr(rto="3s")
def test_a_passing_drill(pgdr_measure):
    laps(pgdr_measure, 0.0, 0.5, 2.0, 2.1)


@pytest.mark.pgdr(rto="1s")
def test_b_over_budget(pgdr_measure):
    laps(pgdr_measure, 0.0, 0.5, 2.0, 2.1)


@pytest.mark.pgdr(rto="3s")
def test_c_restore_lost_rows(pgdr_measure):
    laps(pgdr_measure, 0.0, 0.5, 2.0, 2.1)
    assert 3 == 5, "restored table has 3 rows, expected 5"


@pytest.mark.pgdr
@pytest.mark.parametrize("target", ["immediate", "xid", "time", "name", "lsn"])
def test_d_pitr_to_every_kind_of_recovery_target(pgdr_measure, target):
    laps(pgdr_measure, 0.0, 0.5, 2.0, 2.1)


@pytest.mark.pgdr
def test_f_a_drill_whose_name_is_longer_than_any_terminal_would_show_in_a_table_column_at_all(
    pgdr_measure,
):
    laps(pgdr_measure, 0.0, 0.5, 2.0, 2.1)


@pytest.mark.pgdr
def test_e_skipped_in_the_body(pgdr_measure):
    pgdr_measure.declare_disaster()
    pytest.skip("no second installation to restore into")
"""


def section(stdout: str) -> list[str]:
    """The lines of the 'pgdr recovery times' table."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "pgdr recovery times" in line)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("pgdr: ran"))
    return lines[start + 1 : end]


def report(root: Path, name: str = "r.json") -> dict[str, Any]:
    return dict(json.loads((root / name).read_text()))


@pytest.mark.parametrize("width", [120, 80])
def test_summary_fits_the_terminal_failures_first_with_their_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    pytester.makepyfile(test_drills=DRILLS)
    result = pytester.runpytest(*PGDR, "--pgdr-report=r.json")
    result.assert_outcomes(passed=7, failed=2, skipped=1)
    table = section(result.stdout.str())
    assert all(len(line) <= width for line in table), [line for line in table if len(line) > width]
    assert table[0].split()[:2] == ["drill", "module"] or table[0].startswith("drill")
    rows = [line for line in table[1:] if not line.startswith(" ")]
    assert rows[0].startswith("test_c_restore_lost"), rows  # the failure first
    assert "FAILED" in rows[0] and "OVER BUDGET" in rows[1] and "test_b_over_budget" in rows[1]
    reason = table[table.index(rows[0]) + 1 :]
    assert any("FAILED: AssertionError: restored table has 3 rows, expected 5" in r for r in reason)
    text = "\n".join(table)
    drills = report(pytester.path)["drills"]
    assert len({d["short_id"] for d in drills}) == len(drills)  # the JSON maps them back
    pitr = [d for d in drills if "recovery_target" in d["id"]]
    longest = [d for d in drills if "longer_than" in d["id"]]
    assert longest and longest[0]["short_id"] in text and longest[0]["id"] not in text
    if width == 120:  # ids of 60 characters fit, and so does the module column
        assert "module" in table[0] and all("test_drills" in row for row in rows)
        assert all(d["id"].split("::")[-1] in text for d in pitr)
    else:  # too narrow: short ids
        assert all(d["short_id"] in text for d in pitr)


def test_json_has_reasons_kept_and_counts_each_drill_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    pytester.runpytest(*PGDR, "--pgdr-report=r.json")
    data = report(pytester.path)
    assert data["schema_version"] == SCHEMA_VERSION == 2
    drills = {d["id"].split("::")[-1].split("[")[0]: d for d in data["drills"]}
    skipped = drills["test_e_skipped_in_the_body"]
    assert skipped["outcome"] == "skipped"
    assert skipped["message"] == skipped["reason"] == "no second installation to restore into"
    failed = drills["test_c_restore_lost_rows"]
    assert failed["reason"] == "AssertionError: restored table has 3 rows, expected 5"
    assert failed["kept"] == [] and data["run"]["kept"] == []
    assert data["summary"] == {
        "drills": 10,
        "passed": 7,
        "failed": 1,
        "over_budget": 1,
        "skipped": 1,
    }
    assert "git" in data["run"] and "ci_url" in data["run"]
    assert any(v.startswith("pytest ") for v in data["environment"]["versions_used"])


def test_history_reader_migrates_version_1(tmp_path: Path) -> None:
    v1 = {
        "schema_version": 1,
        "run": {"id": "r1", "started": "2026-11-20T02:00:00+00:00"},
        "summary": {"drills": 2, "passed": 0, "failed": 2, "skipped": 0, "over_budget": 1},
        "drills": [
            {"id": "t.py::test_a", "outcome": "failed", "message": "boom\nat x", "verdict": None},
            {"id": "t.py::test_b", "outcome": "failed", "verdict": {"status": "over"}},
        ],
    }
    (tmp_path / "night1.json").write_text(json.dumps(v1))
    warnings: list[str] = []
    (run,) = load_history(tmp_path, warn=warnings.append)
    assert not warnings and run["schema_version"] == 2
    assert run["summary"]["failed"] == 1 and run["summary"]["over_budget"] == 1
    assert run["drills"][0]["reason"] == "boom" and run["drills"][0]["short_id"]
    assert run["run"]["kept"] == []


def test_junit_class_and_property_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_drills=DRILLS)
    pytester.runpytest(*PGDR, "--junitxml=j.xml", "-k", "passing")
    (case,) = ET.parse(pytester.path / "j.xml").getroot().iter("testcase")
    names = [p.get("name", "") for p in case.iter("property")]
    assert "pgdr_phase_restore_base_backup_s" in names
    assert all(" " not in name for name in names)
    assert case.get("classname") == "test_drills"


def test_junit_classname_of_installed_drills() -> None:
    venv = ".venv/lib/python3.11/site-packages/pytest_pgdr/scenarios/test_failover.py"
    assert junit_classname(f"{venv}::test_kill[pg18]") == "pytest_pgdr.scenarios.test_failover"
    assert junit_classname(f"{venv}::TestX::test_y") == "pytest_pgdr.scenarios.test_failover.TestX"
    outside = "../../opt/pgdr/pytest_pgdr/scenarios/test_switchover.py::test_s"
    assert junit_classname(outside) == "pytest_pgdr.scenarios.test_switchover"
    assert junit_classname("tests/test_dr.py::test_a") is None  # pytest's name is right


def test_measurement_reprs_are_short(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
import pytest

@pytest.mark.pgdr
def test_shows_its_measurement(pgdr_measure):
    rto = pgdr_measure.declare_disaster()
    rto.lap("restore")
    pgdr_measure.record_rpo(lost_commits=0)
    assert pgdr_measure is None
""")
    result = pytester.runpytest(*PGDR)
    out = result.stdout.str()
    assert "clock=" not in out and "Stopwatch(clock" not in out
    result.stdout.fnmatch_lines(
        ["*assert Measurement(rto=Stopwatch(running * s; restore * s), rpo=0 lost) is None"]
    )


KEPT = """
import pytest

@pytest.mark.pgdr
def test_breaks(pgdr, pgdr_primary):
    raise AssertionError(f"see {pgdr_primary.log.path}")

@pytest.mark.pgdr
def test_fine(pgdr, pgdr_primary):
    assert pgdr_primary.scalar("SELECT 1") == 1
"""


def test_kept_directories_are_listed_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_kept=KEPT)
    result = pytester.runpytest_subprocess(
        *PGDR, "-n", "2", "--pgdr-keep=failed", "--pgdr-report=r.json"
    )
    result.assert_outcomes(passed=1, failed=1)
    data = report(pytester.path)
    (kept,) = data["run"]["kept"]
    try:
        out = result.stdout.str()
        assert "pgdr kept data directories and logs" in out
        assert kept in result.stdout.lines and "test_breaks" in kept
        (broken,) = [d for d in data["drills"] if "test_breaks" in d["id"]]
        assert broken["kept"] == [kept]
        log = broken["reason"].removeprefix("AssertionError: see ")
        assert log.startswith(kept) and Path(log).is_file(), log  # the kept log, not the run dir
        result.stdout.fnmatch_lines(["*pgdr kept (teardown)*", f"kept in {kept} (was *)"])
    finally:
        import shutil

        shutil.rmtree(kept, ignore_errors=True)


UNMEASURED = """
import pytest

@pytest.mark.pgdr(min_version=99)
def test_needs_new(pgdr, pgdr_primary):
    pass

def test_breaks(pgdr_primary):
    raise RuntimeError("primary did not come back")
"""


def test_drills_that_measured_nothing_keep_their_reasons(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=UNMEASURED)
    result = pytester.runpytest(*PGDR, "--pgdr-report=r.json")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["test_breaks*  test_x  local/pg18*FAILED", "    FAILED: RuntimeError: *"]
    )
    drills = {d["id"].split("::")[-1]: d for d in report(pytester.path)["drills"]}
    assert (
        drills["test_breaks[pg18-embedded]"]["reason"] == "RuntimeError: primary did not come back"
    )
    assert drills["test_needs_new[pg18-embedded]"]["reason"].startswith("needs PostgreSQL 99")
    assert drills["test_needs_new[pg18-embedded]"]["name"].endswith("[pg18-embedded]")
