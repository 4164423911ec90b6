"""Recovery objectives (budgets) and the verdict of one drill against them.

A budget sets the allowed RTO, RPO and, optionally, per-phase times. The verdict puts what was
measured and what was allowed side by side, phase by phase. Plain Python: the plugin feeds it
the drill's marker and the ini/command-line defaults.

RPO is a duration: how far back in time the recovered data reaches before the disaster
(the window of acknowledged writes that were lost). ``rpo=0`` means no acknowledged write may
be lost at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.units import NONE_WORDS, format_bytes, format_duration, parse_duration

PASS, OVER, UNMEASURED, NO_BUDGET = "pass", "over", "unmeasured", "no budget"


@dataclass(frozen=True)
class Budget:
    """What a drill is allowed: ``rto_s``/``rpo_s`` in seconds (None: no objective)."""

    rto_s: float | None = None
    rpo_s: float | None = None
    phases: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.rto_s is None and self.rpo_s is None and not self.phases

    @classmethod
    def build(
        cls,
        marker: Mapping[str, Any],
        defaults: Mapping[str, tuple[float | None, str]],
    ) -> Budget:
        """Marker keywords (``rto``, ``rpo``, ``phases``) win over ``defaults`` (value, source)."""
        values: dict[str, float | None] = {}
        sources: dict[str, str] = {}
        for key in ("rto", "rpo"):
            if isinstance(marker.get(key), str) and marker[key].strip().lower() in NONE_WORDS:
                values[key], sources[key] = None, "marker"  # this drill has no such objective
            elif marker.get(key) is not None:
                values[key] = parse_duration(marker[key], f"pgdr marker {key}=")
                sources[key] = "marker"
            else:
                values[key], sources[key] = defaults.get(key, (None, "default"))
        given = marker.get("phases") or {}
        if not isinstance(given, Mapping):
            raise ConfigError(
                f"Bad value {given!r} for pgdr marker phases=",
                "give a mapping of phase name to duration, e.g. {'promote': '2s'}",
            )
        phases = {
            str(name): parse_duration(limit, f"pgdr marker phases[{name!r}]")
            for name, limit in given.items()
        }
        return cls(values["rto"], values["rpo"], phases, sources)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rto_s": self.rto_s,
            "rpo_s": self.rpo_s,
            "phases": dict(self.phases),
            "sources": dict(self.sources),
        }


@dataclass(frozen=True)
class Check:
    """One line of a verdict: a figure, what was measured and what was allowed."""

    figure: str
    measured: str
    allowed: str
    status: str  # pass, over, unmeasured (budget set, nothing measured) or no budget
    indent: int = 0
    #: an unmeasured figure fails the drill only when the drill itself (its marker) set the
    #: budget; under an ini/command-line default it is reported, the same way, but not failed
    binding: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "measured": self.measured,
            "allowed": self.allowed,
            "status": self.status,
        }


@dataclass(frozen=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        statuses = {c.status for c in self.checks}
        for status in (OVER, UNMEASURED, PASS):
            if status in statuses:
                return status
        return NO_BUDGET

    @property
    def over(self) -> list[Check]:
        return [
            c for c in self.checks if c.status == OVER or (c.status == UNMEASURED and c.binding)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checks": [c.as_dict() for c in self.checks]}

    def message(self, drill: str = "drill") -> str:
        """The failure text: measured and allowed side by side, phase by phase."""
        names = ", ".join(c.figure.strip() for c in self.over)
        width = max(len("  " * c.indent + c.figure) for c in self.checks)
        rows = [f"  {'figure':<{width}}  {'measured':>12}  {'allowed':>12}"]
        for c in self.checks:
            mark = {OVER: "  <-- OVER BUDGET", UNMEASURED: "  <-- NOT MEASURED"}.get(c.status, "")
            if c.status == UNMEASURED and not c.binding:
                mark = "  <-- not measured by this drill"
            label = "  " * c.indent + c.figure
            rows.append(f"  {label:<{width}}  {c.measured:>12}  {c.allowed:>12}{mark}")
        return f"pgdr: {drill} is over its recovery budget ({names}).\n" + "\n".join(rows)


def judge(budget: Budget, data: Mapping[str, Any]) -> Verdict:
    """Compare a measurement (``Measurement.as_dict()``) with ``budget``."""
    checks = _rto_checks(budget, data.get("rto")) + _rpo_checks(budget, data.get("rpo"))
    return Verdict(tuple(checks))


def _status(measured: float | None, allowed: float | None) -> str:
    if allowed is None:
        return NO_BUDGET
    if measured is None:
        return UNMEASURED
    return PASS if measured <= allowed else OVER


def _rto_checks(budget: Budget, rto: Mapping[str, Any] | None) -> list[Check]:
    total = rto["total_s"] if rto else None
    if total is None and budget.rto_s is None and not budget.phases:
        return []
    checks = [
        Check(
            "RTO",
            format_duration(total),
            format_duration(budget.rto_s),
            _status(total, budget.rto_s),
            binding=budget.sources.get("rto") == "marker",
        )
    ]
    measured = {p["name"]: p["seconds"] for p in (rto or {}).get("phases", [])}
    for name in list(measured) + [n for n in budget.phases if n not in measured]:
        allowed = budget.phases.get(name)
        checks.append(
            Check(
                name,
                format_duration(measured.get(name)),
                format_duration(allowed),
                _status(measured.get(name), allowed),
                indent=1,
            )
        )
    return checks


def _rpo_checks(budget: Budget, rpo: Mapping[str, Any] | None) -> list[Check]:
    if rpo is None:
        if budget.rpo_s is None:
            return []
        binding = budget.sources.get("rpo") == "marker"
        return [Check("RPO", "-", format_duration(budget.rpo_s), UNMEASURED, binding=binding)]
    window = rpo.get("window_s")
    lost = rpo.get("lost_commits")
    status = _status(window, budget.rpo_s)
    if budget.rpo_s == 0 and lost:
        status = OVER
    checks = [
        Check("RPO (loss window)", format_duration(window), format_duration(budget.rpo_s), status)
    ]
    if lost is not None:
        checks.append(
            Check(
                "commits lost",
                str(lost),
                "0" if budget.rpo_s == 0 else "-",
                status if budget.rpo_s == 0 else NO_BUDGET,
                indent=1,
            )
        )
    if rpo.get("wal_bytes") is not None:
        checks.append(
            Check(
                "WAL not on new timeline", format_bytes(rpo["wal_bytes"]), "-", NO_BUDGET, indent=1
            )
        )
    return checks


class BudgetExceeded(AssertionError):
    """A drill measured more than its budget allows."""
