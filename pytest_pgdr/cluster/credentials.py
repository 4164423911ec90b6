"""The generated passwords of one topology, and the pgpass file that holds them.

The passwords never travel as arguments: clients and tools read them from the pgpass file
(``passfile=`` / ``PGPASSFILE``), so no Python frame of a failing call holds one, and a
traceback with locals (``pytest -l``) or a JUnit report cannot show one. Where the value
itself is held, it is a :class:`Secret`, whose ``repr`` is masked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pytest_pgdr.basics.errors import MASK, register_secret
from pytest_pgdr.cluster.template import SUPERUSER

REPLICATION_USER = "pgdr_replicator"
SCRAM_ITERATIONS = 4096  # PostgreSQL's default


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
    passfile: Path  # where the servers and their tools are
    superuser: str = SUPERUSER
    replication_user: str = REPLICATION_USER
    #: the same file on this machine, for the harness's own connections (None: ``passfile``)
    local_passfile: Path | None = None

    @property
    def client_passfile(self) -> Path:
        return self.local_passfile or self.passfile

    @classmethod
    def generate(cls, passfile: Path, local_passfile: Path | None = None) -> Credentials:
        words = Secret(secrets.token_urlsafe(18)), Secret(secrets.token_urlsafe(18))
        creds = cls(*words, passfile, local_passfile=local_passfile)
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


def scram_verifier(password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 7677), made here so
    that only the verifier is ever sent (``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'``).
    Generated passwords are ASCII, which SASLprep leaves unchanged."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )
