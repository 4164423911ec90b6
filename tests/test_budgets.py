"""Budgets mean what they say, through a real pytest run (issue: the team's own database)."""

from __future__ import annotations

import pytest

DRILLS = """
import pytest

@pytest.mark.pgdr(rto="30s")
def test_breaks_inside(pgdr_measure):
    pgdr_measure.declare_disaster()
    raise RuntimeError("restore failed for a reason of its own")

def test_measures_no_rpo(pgdr_measure):
    rto = pgdr_measure.declare_disaster()
    rto.stop("verify")

@pytest.mark.pgdr(rpo="none")
def test_loses_data_by_design(pgdr_measure):
    rto = pgdr_measure.declare_disaster()
    rto.stop("verify")
    pgdr_measure.record_rpo(lost_commits=25)

@pytest.mark.pgdr(rpo=0)
def test_promises_rpo_but_measures_none(pgdr_measure):
    rto = pgdr_measure.declare_disaster()
    rto.stop("verify")
"""


def test_a_failure_is_a_failure_and_unmeasured_reads_alike(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npgdr_rpo = 0\n")
    pytester.makepyfile(test_budget_drills=DRILLS)
    result = pytester.runpytest(
        "--pgdr", "--pgdr-scenarios=none", "--pgdr-report=run.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert "restore failed for a reason of its own" in out
    assert "test_breaks_inside is over its recovery budget" not in out
    assert "test_promises_rpo_but_measures_none is over its recovery budget (RPO)" in out
    import json

    report = json.loads((pytester.path / "run.json").read_text())
    drills = {d["name"].split("::")[-1]: d for d in report["drills"]}
    assert (drills["test_breaks_inside"].get("verdict") or {}).get("status") in (None, "")
    assert drills["test_measures_no_rpo"]["verdict"]["status"] == "unmeasured"  # shown, not failed
    assert drills["test_measures_no_rpo"]["outcome"] == "passed"
