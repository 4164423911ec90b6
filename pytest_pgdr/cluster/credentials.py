"""The generated passwords of one topology, and the pgpass file that holds them.

The passwords never travel as arguments: clients and tools read them from the pgpass file
(``passfile=`` / ``PGPASSFILE``), so no Python frame of a failing call holds one, and a
traceback with locals (``pytest -l``) or a JUnit report cannot show one. Where the value
itself is held, it is a :class:`Secret`, whose ``repr`` is masked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pytest_pgdr.basics.errors import MASK, register_secret
from pytest_pgdr.cluster.template import SUPERUSER

REPLICATION_USER = "pgdr_replicator"


class Secret(str):
    """A password: a plain ``str`` to code that uses it, masked in ``repr`` (tracebacks,
    pytest's ``-l`` locals, dataclass reprs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


@dataclass(frozen=True)
class Credentials:
    """Generated per topology; only the pgpass file (0600, server user) holds them on disk."""

    password: Secret = field(repr=False)
    replication_password: Secret = field(repr=False)
    passfile: Path
    superuser: str = SUPERUSER
    replication_user: str = REPLICATION_USER

    @classmethod
    def generate(cls, passfile: Path) -> Credentials:
        creds = cls(Secret(secrets.token_urlsafe(18)), Secret(secrets.token_urlsafe(18)), passfile)
        register_secret(creds.password)
        register_secret(creds.replication_password)
        return creds

    def pgpass(self) -> Secret:
        """The pgpass file's text (a :class:`Secret`: masked in the locals of any frame that
        writes it)."""
        return Secret(
            f"*:*:*:{self.superuser}:{self.password}\n"
            f"*:*:*:{self.replication_user}:{self.replication_password}\n"
        )
