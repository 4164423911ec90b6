"""Errors a user can cause, each read as one paragraph: what happened, why, what to do.

Every message goes through :func:`redact`, so generated passwords never reach a log or a report.
"""

from __future__ import annotations

from collections.abc import Iterable

_SECRETS: set[str] = set()
MASK = "********"


def register_secret(secret: str) -> None:
    """Remember a secret so that :func:`redact` masks it wherever it appears."""
    if len(secret) >= 6:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _sentence(text: str) -> str:
    """End with a full stop; capitalize a plain first word (never a name like pg_dump)."""
    text = text.strip().rstrip(".")
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():
        text = text[:1].upper() + text[1:]
    return text + "."


class PgdrError(Exception):
    """Base class: ``what`` happened, ``why``, what to ``do``, and the log lines that matter."""

    def __init__(
        self,
        what: str,
        why: str = "",
        do: str = "",
        log_lines: Iterable[str] = (),
        log_name: str = "server log",
    ) -> None:
        self.what = what
        self.why = why
        self.do = do
        self.log_lines = [line.rstrip("\n") for line in log_lines]
        self.log_name = log_name
        super().__init__(self.render())

    def render(self) -> str:
        parts = [_sentence(text) for text in (self.what, self.why, self.do) if text]
        text = " ".join(parts)
        if self.log_lines:
            shown = "\n".join("    " + line for line in self.log_lines)
            text += f"\n  {self.log_name}:\n{shown}"
        return redact(text)

    def __str__(self) -> str:
        return self.render()


class ConfigError(PgdrError):
    """A setting has a bad value (shown to pytest users as a usage error)."""


class MissingBinaryError(PgdrError):
    """A PostgreSQL installation or one of its programs cannot be found or run."""


class OsUserError(PgdrError):
    """No unprivileged OS user can run the servers."""


class ServerStartError(PgdrError):
    """A server did not start."""


class WaitTimeout(PgdrError):
    """Something awaited did not happen before its deadline."""


class RecoveryError(PgdrError):
    """Recovery stopped, failed, or ended somewhere other than where it was asked to."""


class ToolError(PgdrError):
    """A PostgreSQL client program (pg_dump, pg_basebackup, ...) failed."""


class Unavailable(PgdrError):
    """Something the run asked for (a backend, an installation, an image, a tool) is missing:
    the drill is skipped, or fails in strict mode (``--pgdr-strict``, on when CI is set).
    ``component`` names an optional part (``ha``) that strict mode fails on only when the
    settings require it."""

    component = ""


class VersionSkip(PgdrError):
    """The drill needs a newer PostgreSQL than the one in use."""
