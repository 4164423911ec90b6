"""A throttled progress line for long drill steps (loading or restoring a large dataset).

Lines go to a sink: by default the process's stderr; under pytest the plugin installs one that
suspends output capture for the line, so it shows in the terminal (from xdist workers too).
Plain Python::

    with Progress("restoring base backup", total=backup.size_bytes()) as p:
        for chunk in chunks:
            ...
            p.advance(len(chunk))
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

EVERY_SECONDS = 2.0
Sink = Callable[[str], None]


def _stderr(text: str) -> None:
    stream = sys.__stderr__
    if stream is not None:
        stream.write(text)
        stream.flush()


_sink: Sink = _stderr


def set_sink(sink: Sink | None) -> None:
    """Where progress lines go (None: back to stderr). The pytest plugin sets this."""
    global _sink
    _sink = sink or _stderr


def human(amount: float, unit: str) -> str:
    """1536 B -> '1.5 kB'; other units get a plain number."""
    if unit != "B":
        return f"{amount:,.0f} {unit}".strip()
    for prefix in ("", "k", "M", "G"):
        if amount < 1024 or prefix == "G":
            return f"{amount:.0f} B" if not prefix else f"{amount:.1f} {prefix}B"
        amount /= 1024
    return f"{amount:.1f} GB"


class Progress:
    """Report ``done`` of ``total`` at most every ``every`` seconds, and once at the end."""

    def __init__(
        self,
        what: str,
        total: float | None = None,
        unit: str = "B",
        stream: TextIO | None = None,
        every: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.stream = stream
        self.every = every
        self.clock = clock
        self.done = 0.0
        self.started = clock()
        self._shown = self.started
        self.lines_written = 0

    def update(self, done: float) -> None:
        """Set how much is done so far; writes a line when ``every`` seconds have passed."""
        self.done = done
        now = self.clock()
        if now - self._shown >= self.every:
            self._shown = now
            self._write(self.line(now))

    def advance(self, amount: float) -> None:
        self.update(self.done + amount)

    def line(self, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        parts = [human(self.done, self.unit)]
        if self.total:
            done = human(self.done, self.unit) if self.unit == "B" else f"{self.done:,.0f}"
            parts[0] = (
                f"{done} of {human(self.total, self.unit)} ({100 * self.done / self.total:.0f}%)"
            )
        if elapsed > 0:
            parts.append(f"{human(self.done / elapsed, self.unit)}/s")
        parts.append(f"{elapsed:.1f} s" if elapsed < 10 else f"{elapsed:.0f} s")
        return f"pgdr: {self.what}: " + ", ".join(parts)

    def finish(self) -> float:
        """Write the final line; returns the seconds elapsed."""
        now = self.clock()
        self._write(self.line(now) + " - done")
        return now - self.started

    def _write(self, text: str) -> None:
        text = ("" if self.lines_written else "\n") + text + "\n"
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()
        else:
            _sink(text)
        self.lines_written += 1

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.finish()
