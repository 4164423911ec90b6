"""Bad input a user can give: each is one usage error (what, why, what to do), never a
traceback, a hang or a silent default (issue 9)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.settings import resolve

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.mark.parametrize("value", ["maybe", "enabled", "2"])
def test_bad_ini_pgdr_enabled_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makeini(f"[pytest]\npgdr_enabled = {value}\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*Bad value '{value}' for pgdr_enabled (ini file)*on, off*"])
    assert "Traceback" not in result.stderr.str()


def test_every_bad_ini_value_errs_even_when_the_command_line_overrides_it() -> None:
    with pytest.raises(ConfigError, match="pgdr_keep .ini file.*never, failed, always"):
        resolve({"keep": "always"}, {"keep": "sometimes"}, env={})
    with pytest.raises(ConfigError, match="PGDR_ENABLED"):
        resolve({}, {}, env={"PGDR_ENABLED": "maybe"})


def test_enabled_command_line_then_environment_then_ini() -> None:
    assert resolve({}, {}, env={}, ini_enabled="on").enabled is True
    assert resolve({}, {}, env={"PGDR_ENABLED": "off"}, ini_enabled="on").enabled is False
    assert resolve({}, {}, env={"PGDR_ENABLED": "off"}, enabled=True).enabled is True
    assert resolve({}, {}, env={}, ini_enabled="").enabled is False


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "fast"])
def test_bad_timeout_scale_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest(f"--pgdr-timeout-scale={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*Bad value '{value}' for --pgdr-timeout-scale*finite number above 0*"]
    )


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory this user cannot create anything in (root ignores modes: use /sys)."""
    if os.geteuid() == 0:
        return Path("/sys")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked


@pytest.mark.parametrize("flag", ["--pgdr-basetemp", "--pgdr-cache-dir"])
def test_unusable_data_and_cache_dirs_are_one_usage_error_at_startup(
    pytester: pytest.Pytester, tmp_path: Path, flag: str
) -> None:
    pytester.makepyfile("def test_primary(pgdr_primary): pass")
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = {
        str(afile): "is not a directory",
        str(tmp_path / "missing" / "child"): "cannot be created. Its parent * does not exist",
        str(_unwritable_dir(tmp_path) / "pgdr"): "is not writable*failed*",
    }
    for place, why in cases.items():
        result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", f"{flag}={place}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, place
        result.stderr.fnmatch_lines([f"*{flag} {place} {why}*"])
        assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("flag", ["--pgdr-report", "--pgdr-html"])
def test_unwritable_report_paths_are_a_usage_error_at_startup(
    pytester: pytest.Pytester, tmp_path: Path, flag: str
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = {
        str(tmp_path): "is a directory",
        str(afile / "run.json"): "cannot be written*is a file*",
        str(_unwritable_dir(tmp_path) / "run.json"): "cannot be written*failed*",
    }
    for place, why in cases.items():
        result = pytester.runpytest(f"{flag}={place}")  # checked even with the drills off
        assert result.ret == pytest.ExitCode.USAGE_ERROR, place
        result.stderr.fnmatch_lines([f"*{flag} {place} {why}*"])


def test_a_report_that_still_cannot_be_written_is_one_paragraph_and_the_summary_stays(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "out").mkdir()
    pytester.makepyfile("""
import os, shutil

def test_the_report_folder_turns_into_a_file():
    shutil.rmtree("out")
    open("out", "w").close()
""")
    result = pytester.runpytest("--pgdr-report=out/run.json", "--pgdr-html=out/run.html")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "pgdr: ERROR: the JSON report could not be written to */out/run.json.*--pgdr-report*",
            "pgdr: ERROR: the HTML report could not be written to */out/run.html.*--pgdr-html*",
            "*1 passed*",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_bad_marker_arguments_fail_the_drill_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_markers="""
import pytest

@pytest.mark.pgdr(min_version="eighteen")
def test_words(pgdr):
    raise AssertionError("the drill must not run")

@pytest.mark.pgdr(phases="x")
def test_phases_text(pgdr_measure):
    raise AssertionError("the drill must not run")

@pytest.mark.pgdr(phases={"promote": "quick"})
def test_phase_limit(pgdr_measure):
    raise AssertionError("the drill must not run")

@pytest.mark.pgdr(17)
def test_positional(pgdr):
    raise AssertionError("the drill must not run")

@pytest.mark.pgdr(min_versoin=17)
def test_typo(pgdr):
    raise AssertionError("the drill must not run")

@pytest.mark.pgdr(min_version="17")
def test_fine():
    pass
"""
    )
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none")
    result.assert_outcomes(errors=5, passed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*the pgdr marker of test_markers.py::test_words[[]*[]] is wrong:"
            " min_version='eighteen' is not a PostgreSQL major version*Write it like"
            " @pytest.mark.pgdr(*",
            "*of test_markers.py::test_phases_text is wrong: phases='x' is not a mapping*",
            "*of test_markers.py::test_phase_limit is wrong: Bad value 'quick' for"
            " phases[[]'promote'[]]*",
            "*of test_markers.py::test_positional[[]*[]] is wrong: it takes keywords only, not 17*",
            "*of test_markers.py::test_typo[[]*[]] is wrong: unknown keyword min_versoin"
            " (valid: min_version, rto, rpo, phases)*",
        ]
    )
    output = result.stdout.str()
    assert "the drill must not run" not in output and "Traceback" not in output


def test_a_postgres_that_hangs_is_a_usage_error_after_a_bounded_wait(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for program in ("postgres", "initdb", "pg_ctl", "pg_controldata"):
        script = bindir / program
        script.write_text("#!/bin/sh\nexec sleep 3600\n" if program == "postgres" else "")
        script.chmod(0o755)
    real_run = subprocess.run

    def quick(*args: Any, **kwargs: Any) -> Any:  # the probe's own deadline, shortened
        if kwargs.get("timeout") is not None:
            kwargs["timeout"] = min(kwargs["timeout"], 1)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", quick)
    result = pytester.runpytest("--pgdr", f"--pgdr-postgres={bindir}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*pytest-pgdr: {bindir}/postgres --version did not answer within 1 s*--pgdr-postgres*"]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
