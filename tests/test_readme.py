"""The README's drills run as written (docs whose examples are tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_drills() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    drills = [b for b in blocks if "def test_" in b]
    assert len(drills) >= 2, "the README lost its example drills"
    return "\n\n".join(drills)


def test_readme_drills_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_readme_drills=readme_drills())
    result = pytester.runpytest_subprocess(
        "--pgdr", "--pgdr-scenarios=none", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=6)  # two drills, and one through each of four client paths
