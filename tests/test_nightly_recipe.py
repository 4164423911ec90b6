"""docs/nightly.md's drill command, run as written for two nights (limited to one drill):
green on a healthy system, the history and HTML written (the recipe is tested, not GitHub)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

NIGHTLY = Path(__file__).resolve().parent.parent / "docs" / "nightly.md"
ONE_DRILL = "test_pitr_to_restore_point_after_accidental_delete"


def recipe_command(run_id: int) -> list[str]:
    text = NIGHTLY.read_text()
    block = re.search(r"- name: Run the drills\n\s+run: \|\n(.*?)\n\n", text, re.S)
    assert block, "docs/nightly.md lost its 'Run the drills' step"
    lines = [line.strip().rstrip("\\").strip() for line in block.group(1).splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("pytest "))
    command = " ".join(lines[start:])
    command = command.replace("${{ github.run_id }}", str(run_id))
    command = command.replace("$(date -u +%Y%m%dT%H%M%SZ)", f"2026010{run_id}T021700Z")
    return shlex.split(command)[1:]  # without "pytest"


def test_nightly_recipe_runs_green_night_after_night(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest="[pytest]\npgdr_rto = 60s\npgdr_rpo = 0\n")
    (pytester.path / "pgdr-history").mkdir()
    (pytester.path / "site").mkdir()
    for night in (1, 2):
        args = recipe_command(night)
        assert "--pgdr" in args and "--pgdr-html" in args
        result = pytester.runpytest_subprocess(*args, "-k", ONE_DRILL, "-p", "no:cacheprovider")
        assert result.ret == 0, result.stdout.str()[-3000:]
    assert len(list((pytester.path / "pgdr-history").glob("*.json"))) == 2
    html = (pytester.path / "site" / "index.html").read_text()
    assert ONE_DRILL in html
    assert (pytester.path / "junit.xml").exists()
