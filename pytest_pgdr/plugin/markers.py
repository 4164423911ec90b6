"""The ``pgdr`` marker: what it accepts, checked before a drill sets anything up.

``@pytest.mark.pgdr(min_version=17, rto="30s", rpo=0, phases={"promote": "2s"})``, keywords
only. A bad argument fails the drill at setup with one paragraph naming it, rather than a
``ValueError`` from deep inside a fixture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.units import parse_duration, parse_optional_duration

KEYWORDS = ("min_version", "rto", "rpo", "phases")
EXAMPLE = "@pytest.mark.pgdr(min_version=17, rto='30s', rpo=0, phases={'promote': '2s'})"


def marker_problem(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """Why these marker arguments are wrong, or None."""
    if args:
        return f"it takes keywords only, not {', '.join(repr(a) for a in args)}"
    unknown = sorted(set(kwargs) - set(KEYWORDS))
    if unknown:
        return f"unknown keyword {', '.join(unknown)} (valid: {', '.join(KEYWORDS)})"
    version = kwargs.get("min_version")
    if version is not None and major_version(version) is None:
        return (
            f"min_version={version!r} is not a PostgreSQL major version"
            " (a whole number such as 15 or 18)"
        )
    try:
        for key in ("rto", "rpo"):
            if kwargs.get(key) is not None:
                parse_optional_duration(f"{key}=", kwargs[key])  # "none": no objective
        phases = kwargs.get("phases")
        if phases is not None:
            if not isinstance(phases, Mapping):
                return f"phases={phases!r} is not a mapping of phase name to duration"
            for name, limit in phases.items():
                parse_duration(limit, f"phases[{name!r}]")
    except ConfigError as exc:
        return str(exc).rstrip(".")
    return None


def major_version(value: Any) -> int | None:
    """``17`` or ``"17"`` -> 17; anything else (``"eighteen"``, ``17.5``, ``True``) -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None


def marker_error(drill: str, problem: str) -> str:
    return (
        f"pytest-pgdr: the pgdr marker of {drill} is wrong: {problem}."
        f" Write it like {EXAMPLE}, with only the keywords the drill needs."
    )
