"""Bad input a user can give: each is one usage error (what, why, what to do), never a
traceback, a hang or a silent default (issue 9)."""

from __future__ import annotations

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
