"""The generated passwords of one topology, and the pgpass file that holds them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from pytest_pgdr.basics.errors import register_secret
from pytest_pgdr.cluster.template import SUPERUSER

REPLICATION_USER = "pgdr_replicator"


@dataclass(frozen=True)
class Credentials:
    """Generated per topology; only the pgpass file (0600, server user) holds them on disk."""

    password: str
    replication_password: str
    passfile: Path
    superuser: str = SUPERUSER
    replication_user: str = REPLICATION_USER

    @classmethod
    def generate(cls, passfile: Path) -> Credentials:
        creds = cls(secrets.token_urlsafe(18), secrets.token_urlsafe(18), passfile)
        register_secret(creds.password)
        register_secret(creds.replication_password)
        return creds

    def pgpass(self) -> str:
        return (
            f"*:*:*:{self.superuser}:{self.password}\n"
            f"*:*:*:{self.replication_user}:{self.replication_password}\n"
        )
