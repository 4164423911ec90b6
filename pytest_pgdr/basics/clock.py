"""A monotonic stopwatch whose named laps add up to its total exactly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class TimingError(AssertionError):
    """A duration of zero or less: a timer bug, never a real measurement."""


@dataclass(repr=False)
class Stopwatch:
    """Call :meth:`lap` at the end of each phase; :meth:`stop` ends the last one.

    >>> sw = Stopwatch.started()
    >>> sw.lap("restore base backup")  # doctest: +SKIP
    """

    clock: Callable[[], float] = time.perf_counter
    started_at: float | None = None
    stopped_at: float | None = None
    laps: list[tuple[str, float]] = field(default_factory=list)
    _last: float = 0.0

    @classmethod
    def started(cls, clock: Callable[[], float] = time.perf_counter) -> Stopwatch:
        sw = cls(clock=clock)
        sw.start()
        return sw

    def start(self) -> None:
        self.started_at = self._last = self.clock()
        self.stopped_at = None
        self.laps.clear()

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.stopped_at is None

    def lap(self, name: str) -> float:
        """End the current phase, naming it; returns its duration in seconds."""
        if not self.running:
            raise TimingError(f"lap {name!r} on a stopwatch that is not running")
        now = self.clock()
        seconds = now - self._last
        if seconds <= 0:
            raise TimingError(f"phase {name!r} lasted {seconds:.6f} s: the clock did not advance")
        self.laps.append((name, seconds))
        self._last = now
        return seconds

    def stop(self, last_phase: str | None = None) -> float:
        if last_phase is not None:
            self.lap(last_phase)
        if not self.running:
            raise TimingError("stop() on a stopwatch that is not running")
        self.stopped_at = self._last if last_phase else self.clock()
        return self.total

    @property
    def total(self) -> float:
        if self.started_at is None:
            return 0.0
        end = self.stopped_at if self.stopped_at is not None else self.clock()
        return end - self.started_at

    def __repr__(self) -> str:
        """Short: a traceback shows the state and the laps, not the clock function."""
        if self.started_at is None:
            state = "not started"
        else:
            state = f"{'running' if self.running else 'stopped'} {self.total:.3f} s"
        laps = ", ".join(f"{n} {s:.3f} s" for n, s in self.laps)
        return f"Stopwatch({state}{'; ' + laps if laps else ''})"

    def phases(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, seconds in self.laps:
            out[name] = out.get(name, 0.0) + seconds
        return out

    def as_dict(self) -> dict[str, Any]:
        total = self.total
        if self.stopped_at is not None and total <= 0:
            raise TimingError(f"total of {total:.6f} s: the clock did not advance")
        return {
            "total_s": round(total, 6),
            "phases": [{"name": n, "seconds": round(s, 6)} for n, s in self.laps],
        }
