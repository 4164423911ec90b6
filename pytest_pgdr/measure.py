"""What one drill measured: its recovery time in phases, and any other figures it records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .timing import Stopwatch


@dataclass
class Measurement:
    """Collected by a drill through the ``pgdr_measure`` fixture; travels on the test report."""

    rto: Stopwatch | None = None
    values: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    def declare_disaster(self) -> Stopwatch:
        """Start the recovery clock: from now until the recovered node is verified."""
        self.rto = Stopwatch.started()
        return self.rto

    def record(self, name: str, value: Any) -> None:
        self.values[name] = value

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"context": dict(self.context), "values": dict(self.values)}
        if self.rto is not None and self.rto.started_at is not None:
            if self.rto.running:
                self.rto.stop()
            out["rto"] = self.rto.as_dict()
        return out


def format_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def summary_lines(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The terminal summary table: one line a drill, its RTO and phases."""
    lines = []
    width = max((len(name) for name, _ in rows), default=10)
    for name, data in rows:
        rto = data.get("rto")
        if not rto:
            continue
        pg = data.get("context", {}).get("postgres", "")
        phases = ", ".join(f"{p['name']} {format_seconds(p['seconds'])}" for p in rto["phases"])
        lines.append(f"{name:<{width}}  {pg:<14} RTO {format_seconds(rto['total_s']):>8}  [{phases}]")
    return lines
