"""What kind of failure a client saw: the classes a writer counts its errors by.

A failover looks different through each client path: a direct client sees the connection
refused, libpq multi-host sees the standby refuse read-write sessions, pgbouncer answers with
its own errors while no server is reachable, pgpool-II while it fails over. Each failed
attempt is put in one class, by its SQLSTATE first and its message otherwise (poolers send
their own errors as protocol violations, 08P01, so that one is read from the message).
"""

from __future__ import annotations

import re

REFUSED = "connection refused"
LOST = "connection lost"
ADMIN_SHUTDOWN = "admin shutdown"
NOT_READY = "server starting or stopping"
READ_ONLY = "read-only transaction"
NOT_PRIMARY = "not the primary"
TIMEOUT = "timeout"
UNACKNOWLEDGED = "commit not acknowledged"
POOLER = "pooler has no server"
OTHER = "other"
CLASSES = (
    REFUSED,
    LOST,
    ADMIN_SHUTDOWN,
    NOT_READY,
    READ_ONLY,
    NOT_PRIMARY,
    TIMEOUT,
    UNACKNOWLEDGED,
    POOLER,
    OTHER,
)

BY_SQLSTATE = {
    "57P01": ADMIN_SHUTDOWN,  # terminating connection due to administrator command
    "57P02": ADMIN_SHUTDOWN,  # crash shutdown
    "57P03": NOT_READY,  # the database system is starting up / shutting down
    "25006": READ_ONLY,  # cannot execute INSERT in a read-only transaction
    "57014": TIMEOUT,  # canceling statement due to statement timeout
}
BY_MESSAGE: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (UNACKNOWLEDGED, r"canceling wait for synchronous replication|not acknowledged"),
        (
            POOLER,
            r"pgbouncer cannot connect|server login has been failing|query_wait_timeout"
            r"|no more connections allowed|failed to create a backend connection"
            r"|all backend nodes are down|executing failover|unable to read message kind"
            r"|unable to read data from db node|pgpool|server conn crashed"
            r"|database .* not available",
        ),
        (REFUSED, r"connection refused|could not connect to server|no such file or directory"),
        (NOT_PRIMARY, r"session is read-only|hot standby mode|is in recovery|not the primary"),
        (TIMEOUT, r"timeout expired|timed out|statement timeout"),
        (ADMIN_SHUTDOWN, r"administrator command|shutting down"),
        (NOT_READY, r"starting up|not yet accepting connections"),
        (
            LOST,
            r"server closed the connection|connection to server was lost|terminating connection"
            r"|consuming input failed|ssl syscall|connection is (?:lost|closed)|broken pipe"
            r"|connection reset|eof detected|no connection to the server|sending query failed",
        ),
    )
)


def classify(message: str, sqlstate: str | None = None) -> str:
    """The class of one failed attempt (one of :data:`CLASSES`).

    libpq reports a multi-host attempt as the last host's failure on the first line, then
    every host's: the first line decides, the rest only when it says nothing known."""
    if sqlstate and sqlstate in BY_SQLSTATE:
        return BY_SQLSTATE[sqlstate]
    first = message.strip().split("\n", 1)[0]
    for text in (first, message):
        for kind, pattern in BY_MESSAGE:
            if pattern.search(text):
                return kind
    return OTHER


def classify_exception(exc: BaseException) -> str:
    """:func:`classify` for a psycopg error (its SQLSTATE, when the server sent one)."""
    return classify(str(exc), getattr(exc, "sqlstate", None))
