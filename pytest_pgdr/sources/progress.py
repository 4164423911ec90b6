"""Long restore steps with a progress line: the program runs in a thread while the sandbox
reports how far it got (database size, WAL replayed), every couple of seconds."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pytest_pgdr.basics.progress import EVERY_SECONDS, Progress
from pytest_pgdr.sources.base import run_as_server

if TYPE_CHECKING:
    from pytest_pgdr.cluster.node import Node


def run_watched(
    node: Node,
    argv: Sequence[str],
    what: str,
    total: int | None = None,
    dbname: str | None = None,
    socket: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the server user against ``node`` (over its private socket with
    ``socket``); while it runs, a progress line says how large the database being loaded has
    grown (``dbname``), or just the time spent."""
    env = node.tool_env()
    if socket:
        env.update(
            PGHOST=str(node.sockdir), PGPORT=str(node.host.server_port(node.name, node.port))
        )

    def done_so_far() -> float:
        if dbname is None:
            return 0.0
        size = node.try_scalar(f"SELECT pg_database_size({_literal(dbname)})")
        return float(size or 0)

    return run_with_progress(
        lambda: run_as_server(node.host, argv, what, env=env),
        what,
        done_so_far,
        total,
    )


def run_with_progress(
    work: Callable[[], subprocess.CompletedProcess[str]],
    what: str,
    done_so_far: Callable[[], float],
    total: float | None = None,
    unit: str = "B",
) -> subprocess.CompletedProcess[str]:
    """``work()`` in a thread; the calling thread updates a :class:`Progress` line until it
    ends (a quiet step, under two seconds, prints nothing)."""
    result: list[subprocess.CompletedProcess[str]] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # handed to the calling thread
            failure.append(exc)

    worker = threading.Thread(target=target, name=f"pgdr {what}", daemon=True)
    progress = Progress(what, total=total, unit=unit)
    worker.start()
    worker.join(EVERY_SECONDS)
    while worker.is_alive():
        progress.update(done_so_far())
        worker.join(EVERY_SECONDS)
    if progress.lines_written:
        progress.update(done_so_far())
        progress.finish()
    if failure:
        raise failure[0]
    return result[0]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
