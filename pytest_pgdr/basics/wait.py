"""Waits that poll finely against a deadline, and say what they waited for when they give up."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from pytest_pgdr.basics.errors import WaitTimeout

T = TypeVar("T")

POLL_SECONDS = 0.003
DEFAULT_TIMEOUT = 60.0


_scale: float | None = None


def set_timeout_scale(scale: float) -> None:
    global _scale
    _scale = scale


def timeout_scale() -> float:
    """Multiplier for every default deadline (``--pgdr-timeout-scale``/``PGDR_TIMEOUT_SCALE``)."""
    if _scale is not None:
        return _scale
    try:
        return max(float(os.environ.get("PGDR_TIMEOUT_SCALE", "1")), 0.01)
    except ValueError:
        return 1.0


def deadline_for(timeout: float | None) -> float:
    seconds = DEFAULT_TIMEOUT * timeout_scale() if timeout is None else timeout
    return time.monotonic() + seconds


def poll(
    check: Callable[[], T | None],
    what: str,
    timeout: float | None = None,
    log_tail: Callable[[], list[str]] | None = None,
    interval: float = POLL_SECONDS,
) -> T:
    """Call ``check`` until it returns something truthy, every ``interval`` seconds.

    ``check`` may raise to abort the wait (e.g. the server died). On timeout a
    :class:`WaitTimeout` names ``what`` was awaited and carries the log tail.
    """
    started = time.monotonic()
    deadline = deadline_for(timeout)
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            waited = time.monotonic() - started
            raise WaitTimeout(
                f"Timed out after {waited:.1f} s waiting for {what}",
                "the condition never became true before the deadline",
                "Look at the server log below; on a slow machine raise PGDR_TIMEOUT_SCALE"
                " or --pgdr-timeout-scale",
                log_lines=log_tail() if log_tail else (),
            )
        time.sleep(interval)
