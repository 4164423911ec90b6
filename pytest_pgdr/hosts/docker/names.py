"""Names and texts of the docker backend: container names, node names, pg_hba.conf."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

DOCKER_HBA = (
    "# pytest-pgdr (docker): private sockets trusted, the topology network needs a password\n"
    "local   all             all                                     trust\n"
    "local   replication     all                                     trust\n"
    "host    all             all             127.0.0.1/32            scram-sha-256\n"
    "host    replication     all             127.0.0.1/32            scram-sha-256\n"
    "host    all             all             samenet                 scram-sha-256\n"
    "host    replication     all             samenet                 scram-sha-256\n"
)


def _port_taken(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "already allocated" in text or "address already in use" in text


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", text).strip("_.-")[:40] or "t"


def _node_name(argv: Sequence[str], log_path: Path) -> str:
    """The node's directory name: the parent of ``-D <datadir>``, else of the log file."""
    args = list(argv)
    if "-D" in args[:-1]:
        return Path(args[args.index("-D") + 1]).parent.name
    return log_path.parent.name
