"""What every physical restore of a foreign backup needs once its files are laid down: the
sandbox's own settings, a superuser the harness can log in as, WAL checks and recovery.

A team's data directory carries its own ``postgresql.conf`` (ports, archive_command, paths of
another machine) and ``postgresql.auto.conf``: both are set aside as ``*.from-backup`` and
the sandbox gets a fresh file that only includes the node's own settings. The harness logs in
over the private socket as the backup's bootstrap superuser (read from ``pg_authid``) and gives
its own superuser a password there, in the sandbox only.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from pytest_pgdr.backup.base import segments_in
from pytest_pgdr.basics.errors import RecoveryError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.lsn import Lsn, archive_gaps, history_parent, unreplayed_segments
from pytest_pgdr.cluster.template import SUPERUSER
from pytest_pgdr.sources.base import SourceSpec, bad_backup

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.recovery import RecoveryTarget

PAGE = 8192
BOOTSTRAP_OID = 10
SET_ASIDE = ("postgresql.conf", "postgresql.auto.conf")
STALE = ("postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal")
REPLAY_DONE = re.compile(
    r"recovery stopping|redo done at|pausing at the end of recovery|recovery has paused"
)
WHY = (
    (
        r"could not find redo location|could not locate required checkpoint",
        "the backup's starting checkpoint is not in its WAL: the backup is incomplete",
    ),
    (
        r"WAL ends before end of online backup|before consistent recovery point",
        "the WAL ends before the backup is consistent: segments the backup needs are missing",
    ),
    (
        r"recovery ended before configured recovery target",
        "the WAL ends before the recovery target: the target lies beyond the archive",
    ),
    (
        r"database files are incompatible with server",
        "the backup was taken with another PostgreSQL major version",
    ),
    (
        r"invalid checkpoint record|invalid primary checkpoint",
        "the backup's control file or WAL is damaged",
    ),
)
START_WAL = re.compile(r"START WAL LOCATION: (\S+) \(file ([0-9A-F]{24})\)")


def bootstrap_superuser(datadir: Path) -> str:
    """The name of role 10 (the superuser initdb made), read from ``global/1260``."""
    path = datadir / "global" / "1260"
    data = path.read_bytes() if path.exists() else b""
    for start in range(0, len(data) - PAGE + 1, PAGE):
        page = data[start : start + PAGE]
        lower = struct.unpack_from("<H", page, 12)[0]
        for slot in range(24, lower, 4):
            (word,) = struct.unpack_from("<I", page, slot)
            offset, flags = word & 0x7FFF, (word >> 15) & 0x3
            if flags != 1 or offset + 100 > PAGE:
                continue
            hoff = page[offset + 22]
            oid, raw = struct.unpack_from("<I64s", page, offset + hoff)
            if oid == BOOTSTRAP_OID:
                return str(raw.split(b"\0", 1)[0].decode(errors="replace"))
    return SUPERUSER


def prepare_datadir(node: Node) -> None:
    """Set the backup's configuration aside; the sandbox's own settings take over."""
    for name in SET_ASIDE:
        path = node.datadir / name
        if path.exists():
            path.rename(path.with_name(name + ".from-backup"))
    for name in STALE:
        (node.datadir / name).unlink(missing_ok=True)
    node.host.write_file(
        node.datadir / "postgresql.conf",
        "# pytest-pgdr sandbox: the backup's own file is postgresql.conf.from-backup\n"
        "include_if_exists = 'pgdr.conf'\n",
    )


def adopt(node: Node, superuser: str) -> None:
    """Give the harness's superuser its password, logged in over the socket as ``superuser``
    (creating it when the backup has no role of that name)."""
    port = node.host.server_port(node.name, node.port)
    with psycopg.connect(
        host=str(node.sockdir), port=port, user=superuser, dbname="postgres", autocommit=True
    ) as conn:
        verifier = conn.pgconn.encrypt_password(
            node.credentials.password.encode(), SUPERUSER.encode(), b"scram-sha-256"
        ).decode()
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [SUPERUSER]).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} SUPERUSER LOGIN PASSWORD {}").format(
                sql.Identifier(SUPERUSER), sql.Literal(verifier)
            )
        )


def start_label(node: Node) -> tuple[str, str]:
    """(start LSN, first WAL segment) from the restored ``backup_label``."""
    path = node.datadir / "backup_label"
    text = path.read_text(errors="replace") if path.exists() else ""
    match = START_WAL.search(text)
    return (match.group(1), match.group(2)) if match else ("", "")


def check_wal_chain(
    spec: SourceSpec, label: str, segments: Sequence[str], first: str, own_wal_to: str = ""
) -> None:
    """No segment missing from ``first`` (the backup's start) to the newest archived one.
    Segments up to ``own_wal_to`` may be missing: the backup carries them in its pg_wal."""
    if not first:
        return
    if not segments:
        if own_wal_to:
            return
        raise bad_backup(
            spec,
            f"has no archived WAL at all, while backup {label} needs segment {first} on",
            "the WAL archive holds no segment, so the backup cannot even reach consistency",
        )
    missing = [m for m in archive_gaps(list(segments), first, 16 << 20) if m > own_wal_to]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise bad_backup(
            spec,
            f"has a gap in its WAL archive: segment {missing[0]}{more} is missing",
            f"backup {label} starts at segment {first} and needs every segment after it up"
            f" to the newest archived one ({segments[-1]}); replay would stop at the gap and"
            " the restore would silently lose every transaction after it",
        )


def archived_segments(names: Sequence[str]) -> list[str]:
    return list(segments_in(list(names)))


def recover(
    node: Node,
    target: RecoveryTarget,
    stopwatch: Stopwatch,
    superuser: str,
    archived: Sequence[str],
) -> str:
    """Start the sandbox in recovery to ``target``, wait for it, adopt it, and (to the end of
    the archive) prove every archived segment was replayed. Returns where replay ended."""
    node.signal_file("recovery")
    node.conf.update(target.settings())
    offset = node.log.offset()
    node.start(wait=False)
    wait_recovered(node, target, superuser, offset, stopwatch)
    if target.action == "promote":
        adopt(node, superuser)
    return check_replayed_to_end(node, target, archived, offset)


def socket_scalar(node: Node, superuser: str, query: str) -> object:
    """One value over the private socket as ``superuser`` (None while the server refuses)."""
    port = node.host.server_port(node.name, node.port)
    try:
        with psycopg.connect(
            host=str(node.sockdir),
            port=port,
            user=superuser,
            dbname="postgres",
            connect_timeout=5,
        ) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error:
        return None
    return row[0] if row else None


def wait_recovered(
    node: Node, target: RecoveryTarget, superuser: str, offset: int, stopwatch: Stopwatch
) -> None:
    """Until the sandbox is promoted (or paused at its target); laps ``replay WAL`` and
    ``promote``. A server that exits fails at once with its own messages."""
    replayed = {"done": False}

    def check() -> bool:
        text = node.log.since(offset)
        if not replayed["done"] and REPLAY_DONE.search(text):
            replayed["done"] = True
            stopwatch.lap("replay WAL")
        if not node.is_running():
            raise RecoveryError(
                f"Recovery of the sandbox to {target.describe()} failed: the server exited",
                _why(text),
                "The backup or its WAL cannot be replayed as it is; the server's messages"
                " are below",
                log_lines=node.log.important(offset),
                log_name=str(node.log.path),
            )
        if target.action == "pause":
            return socket_scalar(node, superuser, "SELECT pg_get_wal_replay_pause_state()") in (
                "paused",
            )
        return socket_scalar(node, superuser, "SELECT pg_is_in_recovery()") is False

    poll(
        check,
        f"the sandbox {node.name} to recover to {target.describe()}",
        None,
        lambda: node.log.tail(offset=offset),
    )
    if not replayed["done"]:
        stopwatch.lap("replay WAL")
    if target.action == "promote":
        stopwatch.lap("promote")


def _why(text: str) -> str:
    for pattern, why in WHY:
        if re.search(pattern, text):
            return why
    return "recovery stopped with an error"


def check_replayed_to_end(
    node: Node, target: RecoveryTarget, archived: Sequence[str], offset: int
) -> str:
    """Where replay ended (from the new timeline's history file); for a restore to the
    latest point, every archived segment of that timeline after it is an error."""
    history = node.datadir / "pg_wal" / f"{node.timeline():08X}.history"
    parent = history_parent(history.read_text()) if history.exists() else None
    if parent is None:
        return str(node.lsn("replay")) if node.in_recovery() else ""
    timeline, end = parent
    missed = unreplayed_segments(list(archived), timeline, end, node.wal_segment_size())
    if missed and target.kind == "latest":
        node.stop("immediate")
        raise RecoveryError(
            f"Replay of {node.name} stopped at {end} on timeline {timeline}, before the end"
            " of the archive",
            f"{len(missed)} archived segment(s) were never replayed (the first: {missed[0]}):"
            " a segment is corrupt or unreadable",
            "Check that segment in the archive; the server's messages are below",
            log_lines=node.log.important(offset),
            log_name=str(node.log.path),
        )
    return str(Lsn(end.value))
