"""Pure logic: settings resolution, CRC-32C, stopwatch, recovery targets, LSNs, redaction."""

from __future__ import annotations

import itertools
import struct

import pytest

from pytest_pgdr.basics.clock import Stopwatch, TimingError
from pytest_pgdr.basics.errors import ConfigError, PgdrError, redact, register_secret
from pytest_pgdr.basics.settings import resolve
from pytest_pgdr.cluster.conf import conf_value
from pytest_pgdr.cluster.lsn import Lsn
from pytest_pgdr.cluster.pgcontrol import control_crc_offset, crc32c
from pytest_pgdr.cluster.recovery import RecoveryTarget


def test_settings_precedence_cli_env_ini_default() -> None:
    s = resolve({"keep": "always"}, {"keep": "failed", "fsync": "on"}, env={"PGDR_KEEP": "never"})
    assert s.keep == "always" and s.sources["keep"] == "command line"
    s = resolve({}, {"keep": "failed"}, env={"PGDR_KEEP": "never"})
    assert s.keep == "never" and s.sources["keep"] == "environment PGDR_KEEP"
    s = resolve({}, {"keep": "failed", "fsync": "on"}, env={})
    assert (s.keep, s.fsync, s.sources["fsync"]) == ("failed", True, "ini pgdr_fsync")
    s = resolve({}, {}, env={})
    assert (s.keep, s.postgres, s.sources["keep"]) == ("never", ("embedded",), "default")


def test_falsy_values_survive_resolution() -> None:
    s = resolve({"fsync": "off"}, {"fsync": "on"}, env={})
    assert s.fsync is False and s.sources["fsync"] == "command line"


def test_several_installations_from_cli_and_ini() -> None:
    assert resolve({"postgres": ["embedded", "15"]}, {}, env={}).postgres == ("embedded", "15")
    assert resolve({}, {"postgres": "embedded\n15"}, env={}).postgres == ("embedded", "15")


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("keep", "sometimes", "never, failed, always"),
        ("backend", "k8s", "local"),
        ("fsync", "maybe", "on, off"),
        ("timeout_scale", "0", "above 0"),
    ],
)
def test_bad_values_name_the_valid_ones(name: str, value: str, valid: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve({name: value}, {}, env={})
    assert valid in str(info.value) and repr(value) in str(info.value)


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


def test_control_crc_offset_is_found_not_assumed() -> None:
    body = bytes(range(256)) * 2
    for offset in (40, 296, 300):
        blob = bytearray(body[:offset]) + struct.pack("<I", crc32c(body[:offset])) + bytes(64)
        assert control_crc_offset(bytes(blob)) == offset


def test_stopwatch_laps_add_up_to_total() -> None:
    ticks = itertools.count(start=10.0, step=0.25)
    sw = Stopwatch.started(clock=lambda: next(ticks))
    sw.lap("restore")
    sw.lap("replay")
    total = sw.stop("verify")
    assert sw.phases() == {"restore": 0.25, "replay": 0.25, "verify": 0.25}
    assert total == pytest.approx(0.75)


def test_stopwatch_refuses_zero_durations() -> None:
    sw = Stopwatch.started(clock=lambda: 5.0)
    with pytest.raises(TimingError, match="did not advance"):
        sw.lap("restore")


def test_recovery_target_settings() -> None:
    assert RecoveryTarget.xid(1234, inclusive=False).settings() == {
        "recovery_target_timeline": "latest",
        "recovery_target_xid": "1234",
        "recovery_target_inclusive": False,
        "recovery_target_action": "promote",
    }
    assert RecoveryTarget.immediate("pause").settings()["recovery_target"] == "immediate"
    assert RecoveryTarget.latest().settings() == {"recovery_target_timeline": "latest"}


def test_recovery_target_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="Valid actions: promote, pause, shutdown"):
        RecoveryTarget.name("x", action="explode")
    with pytest.raises(ConfigError, match="time zone"):
        import datetime as dt

        RecoveryTarget.time(dt.datetime(2026, 1, 1))


def test_lsn_parse_compare_subtract() -> None:
    a, b = Lsn.parse("0/3000028"), Lsn.parse("1/0")
    assert str(a) == "0/3000028" and a < b and b - a == (1 << 32) - 0x3000028


def test_conf_values_are_quoted() -> None:
    assert conf_value(True) == "on" and conf_value(5) == "5"
    assert conf_value("it's") == "'it''s'"


def test_errors_are_one_paragraph_and_redact_secrets() -> None:
    register_secret("s3cr3t-password")
    err = PgdrError("Login failed with s3cr3t-password", "bad", "fix it", ["FATAL: x"])
    text = str(err)
    assert "s3cr3t-password" not in text and "********" in text
    assert text.startswith("Login failed with ********. Bad. Fix it.")
    assert redact("no secret here") == "no secret here"
