"""Damaged backups, made on purpose with the raw tools: each one fails the nightly drill with
a reason that says what is wrong with the backup, never a pass and never a hang; the sources
are byte-identical afterwards."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_sources_integration import backups_dir, digest, local_tools, run_team_repo, team_primary

from pytest_pgdr import Topology

pytestmark = pytest.mark.pgdr

CHECKS = """
[max_age]
"public.orders.placed_at" = "26h"
"""


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def wrong_major(path: Path) -> None:
    text = path.read_text()
    path.write_text(
        re.sub(
            r"Dumped from database version \d+", "Dumped from database version 99", text, count=1
        )
    )


def archive_with_gap(pgdr: Topology, out: Path) -> tuple[Path, Path, str]:
    """A base backup and an archive with one segment removed after it: (backup, wal, gone)."""
    wal = pgdr.host.make_dir(out / "wal", 0o755)
    node = team_primary(pgdr, wal)
    node.run_tool("pg_basebackup", "-D", out / "base", "-X", "none", "-c", "fast")
    for _ in range(3):
        node.psql("INSERT INTO orders (customer_id, amount) SELECT 1, 1", "app")
        node.query("SELECT pg_switch_wal()")
    last = node.scalar("SELECT pg_walfile_name(pg_current_wal_lsn() - 1)")
    node.poll_query(
        f"SELECT last_archived_wal >= '{last}' FROM pg_stat_archiver", "the last segment archived"
    )
    node.stop()
    label = (out / "base" / "backup_label").read_text()
    first = re.search(r"\(file ([0-9A-F]{24})\)", label)
    assert first is not None
    segments = sorted(p.name for p in wal.iterdir() if len(p.name) == 24 and p.name > first[1])
    assert len(segments) >= 3, segments
    (wal / segments[1]).unlink()
    return out / "base", wal, segments[1]


def test_each_damaged_backup_fails_with_its_reason(
    pytester: pytest.Pytester, local_tools: Topology
) -> None:
    pgdr = local_tools
    out = backups_dir(pgdr)
    base, wal, gone = archive_with_gap(pgdr, out)
    node = pgdr.primary(name="dumps", archive=False)
    node.query("CREATE DATABASE app")
    from test_sources_integration import TEAM_SQL

    node.psql(TEAM_SQL, "app")
    for name in ("truncated.dump", "unreadable.dump"):
        node.run_tool("pg_dump", "-Fc", "-f", out / name, "-d", "app")
    node.run_tool("pg_dump", "-Fp", "-f", out / "future.sql", "-d", "app")
    node.psql("UPDATE orders SET placed_at = placed_at - interval '3 days'", "app")
    node.run_tool("pg_dump", "-Fc", "-f", out / "stale.dump", "-d", "app")
    truncated(out / "truncated.dump")
    wrong_major(out / "future.sql")
    os.chmod(out / "unreadable.dump", 0)
    before = digest([out])

    result, data = run_team_repo(
        pytester,
        pgdr,
        {
            "truncated": f"dump:{out}/truncated.dump",
            "gap": f"basebackup:{base}?wal={wal}",
            "stale": f"dump:{out}/stale.dump",
            "future": f"dump:{out}/future.sql?dbname=app",
            "unreadable": f"dump:{out}/unreadable.dump",
        },
        CHECKS,
    )
    result.assert_outcomes(failed=5)
    assert digest([out]) == before, "a source changed while it was restored"
    reasons = {
        str(d["id"]).rsplit("[", 1)[-1].rstrip("]"): str(d["message"]) for d in data["drills"]
    }
    expected = {
        "truncated": "did not restore: it is damaged or incomplete",
        "gap": f"has a gap in its WAL archive: segment {gone} is missing",
        "stale": "over the limit of 26.0 h: the backup is stale",
        "future": "needs PostgreSQL 99 or newer, which this run does not have",
        "unreadable": "cannot be read by the server's OS user",
    }
    for name, words in expected.items():
        assert words in reasons[name], f"{name}: {reasons[name]}"
    assert "backup base" in reasons["gap"] or str(base) in reasons["gap"]


__all__ = ["local_tools"]  # the fixture, imported for pytest to find
