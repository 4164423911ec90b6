"""What one drill measured: RTO in phases, write outage, RPO, named figures, log lines.

A :class:`Measurement` is collected by a drill through the ``pgdr_measure`` fixture (or built
by hand without pytest) and travels on the test report as :meth:`Measurement.as_dict`, so it
survives pytest-xdist. Every time is from a monotonic clock; zero or negative durations raise
:class:`~pytest_pgdr.basics.clock.TimingError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_pgdr.basics.clock import Stopwatch, TimingError
from pytest_pgdr.basics.progress import Progress

LOG_LINES_PER_NODE = 30
MILESTONES = re.compile(
    r"starting point-in-time recovery|starting archive recovery|entering standby mode"
    r"|redo starts at|consistent recovery state reached|recovery stopping|redo done at"
    r"|last completed transaction|pausing at the end of recovery|recovery has paused"
    r"|shutdown at recovery target|received promote request|selected new timeline"
    r"|archive recovery complete|database system is ready to accept|started streaming WAL"
    r"|database system was interrupted|not properly shut down|PANIC|FATAL"
)
NOISE = re.compile(
    r"the database system is (starting up|not yet accepting|shutting down)"
    r"|terminating connection due to administrator command"
)


class HasLog(Protocol):
    """A node, as far as log collection needs one (``pytest_pgdr.cluster.node.Node`` fits)."""

    name: str

    @property
    def log(self) -> Any: ...


class Reportable(Protocol):
    """An outage or RPO object that places itself on the drill's clock (see ``writer.py``)."""

    def as_dict(self, origin: float | None = None) -> dict[str, Any]: ...


@dataclass(repr=False)
class Measurement:
    """Collected by a drill through the ``pgdr_measure`` fixture; travels on the test report."""

    rto: Stopwatch | None = None
    values: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    outage: dict[str, Any] | None = None
    rpo: dict[str, Any] | None = None
    log_lines: list[dict[str, str]] = field(default_factory=list)
    budget: dict[str, Any] | None = None
    verdict: dict[str, Any] | None = None

    def __repr__(self) -> str:
        """Short: what was measured, not every field (tracebacks show it in full otherwise)."""
        parts = [f"rto={self.rto!r}"] if self.rto is not None else []
        if self.rpo is not None:
            parts.append(f"rpo={self.rpo.get('lost_commits')} lost")
        if self.outage is not None:
            parts.append("outage")
        parts += [
            f"{len(d)} {name}"
            for name, d in (
                ("figures", self.figures),
                ("values", self.values),
                ("log lines", self.log_lines),
            )
            if d
        ]
        if self.verdict is not None:
            parts.append(f"verdict={self.verdict.get('status')}")
        return f"Measurement({', '.join(parts)})"

    # RTO --------------------------------------------------------------------------------
    def declare_disaster(self) -> Stopwatch:
        """Start the recovery clock: from now until the recovered node is verified."""
        self.rto = Stopwatch.started()
        return self.rto

    @property
    def origin(self) -> float | None:
        """The clock reading when the disaster was declared (None before)."""
        return self.rto.started_at if self.rto is not None else None

    def phase_seconds(self, phase: str) -> float:
        if self.rto is None or phase not in self.rto.phases():
            done = ", ".join(self.rto.phases()) if self.rto else "none: no disaster declared"
            raise TimingError(f"no RTO phase named {phase!r} (phases so far: {done})")
        return self.rto.phases()[phase]

    # figures ----------------------------------------------------------------------------
    def record(self, name: str, value: Any) -> None:
        """A free-form value (kept in the report under ``values``)."""
        self.values[name] = value

    def figure(self, name: str, value: float, unit: str) -> None:
        """A named, numeric figure with a unit (``B/s``, ``s``, ``B``...), shown in reports."""
        self.figures[name] = {"value": value, "unit": unit}

    def record_throughput(
        self,
        nbytes: int,
        seconds: float | None = None,
        phase: str = "restore base backup",
        name: str = "restore throughput",
        bytes_name: str = "restored bytes",
    ) -> float:
        """Bytes restored per second: ``nbytes`` over ``seconds`` or over the RTO ``phase``
        (e.g. ``record_throughput(backup.size_bytes())`` after ``pgdr.restore(...)``)."""
        seconds = self.phase_seconds(phase) if seconds is None else seconds
        if seconds <= 0:
            raise TimingError(
                f"{name}: {nbytes} bytes in {seconds:.6f} s: the clock did not advance"
            )
        rate = round(nbytes / seconds, 1)
        self.figure(name, rate, "B/s")
        self.figure(bytes_name, nbytes, "B")
        return rate

    def record_lag(
        self, seconds: float | None = None, nbytes: int | None = None, name: str = "replica lag"
    ) -> None:
        """Replica lag, as time (``seconds``) and/or WAL distance (``nbytes``)."""
        if seconds is not None:
            self.figure(name, seconds, "s")
        if nbytes is not None:
            self.figure(f"{name} bytes", nbytes, "B")

    # write outage and RPO ---------------------------------------------------------------
    def record_outage(self, outage: Reportable | Mapping[str, Any]) -> None:
        """The write outage a client saw (``Writer.outage()``), placed on the RTO clock."""
        self.outage = _placed(outage, self.origin)

    def record_rpo(
        self,
        rpo: Reportable | Mapping[str, Any] | None = None,
        *,
        lost_commits: int | None = None,
        window_s: float | None = None,
        wal_bytes: int | None = None,
    ) -> None:
        """Data lost: a ``Writer.rpo(node)`` result, or the figures given by keyword."""
        if rpo is not None:
            self.rpo = _placed(rpo, self.origin)
            return
        if window_s is None:
            window_s = 0.0 if lost_commits == 0 else None
        self.rpo = {
            "lost_commits": lost_commits,
            "window_s": window_s,
            "wal_bytes": wal_bytes,
            "lost": [],
        }

    # server log lines -------------------------------------------------------------------
    def attach_log(
        self,
        node: HasLog,
        offset: int = 0,
        pattern: str | None = None,
        limit: int = LOG_LINES_PER_NODE,
    ) -> list[str]:
        """Keep the log lines of ``node`` that matter (recovery stop point, consistency,
        promotion, failures) for the report; ``pattern`` picks other lines."""
        rx = re.compile(pattern) if pattern else MILESTONES
        picked = _dedupe(
            [line for line in node.log.lines(offset) if rx.search(line) and not NOISE.search(line)]
        )[-limit:]
        self.log_lines.extend({"node": node.name, "line": line} for line in picked)
        return picked

    def attach_logs(self, nodes: Iterable[HasLog]) -> None:
        """:meth:`attach_log` for every node that has no lines attached yet."""
        seen = {entry["node"] for entry in self.log_lines}
        for node in nodes:
            if node.name not in seen:
                self.attach_log(node)

    # progress ---------------------------------------------------------------------------
    def progress(self, what: str, total: float | None = None, unit: str = "B") -> Progress:
        """A throttled progress line on the terminal for a long step (see :class:`Progress`)."""
        return Progress(what, total=total, unit=unit)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "context": dict(self.context),
            "values": dict(self.values),
            "figures": {k: dict(v) for k, v in self.figures.items()},
        }
        if self.rto is not None and self.rto.started_at is not None:
            if self.rto.running:
                self.rto.stop()
            out["rto"] = self.rto.as_dict()
        for key in ("outage", "rpo", "budget", "verdict"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.log_lines:
            out["log_lines"] = [dict(entry) for entry in self.log_lines]
        return out


def _placed(item: Reportable | Mapping[str, Any], origin: float | None) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return dict(item)
    return item.as_dict(origin)


def _dedupe(lines: list[str]) -> list[str]:
    """Drop lines whose message (after the timestamp and pid) repeats an earlier one."""
    seen: set[str] = set()
    out = []
    for line in lines:
        key = line.split("] ", 1)[-1]
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out
