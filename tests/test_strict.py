"""Strict mode (issue 9): what the run asked for and cannot have fails instead of skipping;
skips about a drill's own needs stay skips; the summary counts drills per backend/version."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from pytest_pgdr.basics.settings import resolve
from pytest_pgdr.plugin.targets import count_line, target, unavailable_specs

pytestmark = pytest.mark.usefixtures("clean_env")

DRILLS = """
import pytest
from pytest_pgdr.basics.errors import Unavailable, VersionSkip

@pytest.mark.pgdr
def test_tool_missing():
    raise Unavailable("pg_combinebackup is not installed", "the package lacks it", "Install it")

@pytest.mark.pgdr
def test_needs_newer():
    raise VersionSkip("needs PostgreSQL 99", "this is older")

@pytest.mark.pgdr
def test_fine():
    pass
"""


def test_unavailable_skips_by_default_and_fails_in_strict_mode(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(DRILLS)
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*pg_combinebackup is not installed*"])
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", "--pgdr-strict=on", "-rs")
    result.assert_outcomes(passed=1, skipped=1, failed=1)  # the version skip stays a skip
    result.stdout.fnmatch_lines(
        ["*pg_combinebackup is not installed. The package lacks it. Install it. Strict mode is on*"]
    )


def test_the_summary_counts_drills_per_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(pgdr_install): pass\ndef test_b(pgdr_install): pass\n")
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none")
    result.stdout.fnmatch_lines(["pgdr: ran 2 drills: local/pg18 2"])
    result = pytester.runpytest()  # drills off: counted as skipped
    result.stdout.fnmatch_lines(["pgdr: ran 0 drills; skipped 2 (local/embedded 2)"])


def test_count_line_and_targets() -> None:
    outcomes = {
        "a": ("local/pg18", "passed"),
        "b": ("docker/pg18", "failed"),
        "c": ("docker/pg18", "passed"),
        "d": ("docker/pg15", "skipped"),
    }
    assert count_line(outcomes) == (
        "pgdr: ran 3 drills: docker/pg18 2, local/pg18 1; skipped 1 (docker/pg15 1)"
    )
    assert target("docker:pytest-pgdr/pg15:latest", None) == "docker/pg15"
    assert target("/usr/lib/postgresql/15/bin", None) == "local/pg15"
    assert target(None, None) == "no installation"


def test_a_missing_docker_extra_makes_the_docker_specs_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "testcontainers" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    settings = resolve({"backend": "local,docker", "image": ["img:1"]}, {}, env={})
    absent = unavailable_specs(settings, [object(), object()])
    assert list(absent) == ["docker:img:1"]
    assert "package 'testcontainers' cannot be imported" in absent["docker:img:1"]
    assert "pytest-pgdr[docker]" in absent["docker:img:1"]
    local = resolve({}, {}, env={})
    assert unavailable_specs(local, [object()]) == {}


HA_DRILL = """
import pytest
from pytest_pgdr.ha.base import ManagerUnavailable

@pytest.mark.pgdr
def test_needs_patroni():
    raise ManagerUnavailable("Patroni is not installed", "no 'patroni' on PATH", "Install it")
"""


@pytest.mark.parametrize(("ha", "outcome"), [("installed", "skipped"), ("required", "failed")])
def test_a_missing_ha_stack_fails_strict_mode_only_when_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ha: str, outcome: str
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(HA_DRILL)
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", f"--pgdr-ha={ha}", "-rs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*Patroni is not installed*"])
