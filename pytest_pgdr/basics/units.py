"""Durations and byte counts: parsed from settings and markers, formatted for people.

Plain Python with no dependencies, so the settings, the budget verdicts and every report share
one reading of ``30s`` and one way of printing ``1.5 MB``.
"""

from __future__ import annotations

import re

from pytest_pgdr.basics.errors import ConfigError

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|min|m|h)?\s*$")
NONE_WORDS = ("", "none", "off")


def parse_duration(text: str | float, name: str = "duration") -> float:
    """``250ms``, ``30s``, ``2m``, ``1.5h`` or a bare number of seconds -> seconds (>= 0)."""
    if isinstance(text, bool):
        raise ConfigError(f"Bad value {text!r} for {name}", "give a duration like 250ms, 30s, 2m")
    if isinstance(text, int | float):
        if text != text or text in (float("inf"), float("-inf")):
            raise ConfigError(f"Bad value {text!r} for {name}", "a duration must be finite")
        if text < 0:
            raise ConfigError(f"Bad value {text!r} for {name}", "a duration cannot be negative")
        return float(text)
    match = DURATION.match(str(text))
    if match is None:
        raise ConfigError(
            f"Bad value {text!r} for {name}",
            "valid durations: a number with ms, s, m or h (250ms, 30s, 2m, 1h),"
            " a bare number of seconds, or none",
        )
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def parse_optional_duration(name: str, text: str) -> float | None:
    """For settings: ``none``/``off`` mean no budget."""
    if str(text).strip().lower() in NONE_WORDS:
        return None
    return parse_duration(text, name)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if 0 < seconds < 0.0005:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def format_bytes(count: float | None) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
