"""Each backup tool against real servers: a round trip, the tool's info, clear errors for
what a user can get wrong, and no password in any file the tools read or write."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_pgdr import ConfigError, RecoveryError, RecoveryTarget, Topology
from pytest_pgdr.backup import BackupTool, ToolRefusesVersion, backup_tool, resolve

pytestmark = pytest.mark.pgdr


# every tool this machine has (WAL-G's absence is tested in test_backup_tools.py); CI installs
# pgBackRest and Barman, so there they are all exercised
@pytest.fixture(params=resolve("installed"))
def tool(request: pytest.FixtureRequest, pgdr: Topology) -> BackupTool:
    return backup_tool(str(request.param), pgdr)


def rows(node: object) -> int:
    return int(node.scalar("SELECT count(*) FROM t"))  # type: ignore[attr-defined]


def test_round_trip_through_the_tool(pgdr: Topology, tool: BackupTool) -> None:
    primary = pgdr.primary()
    tool.attach(primary)
    primary.query("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
    made = tool.backup(primary)
    primary.query("INSERT INTO t SELECT generate_series(1001, 1500)")
    last = tool.wait_archived(primary)

    info = tool.info()
    assert [b.id for b in info.backups] == [made.id]
    assert made.kind == "full" and made.size > 0 and made.start_wal, made
    assert made.stopped > 0 and made.started <= made.stopped, made
    assert last in info.wal and info.gaps_after(made) == []
    assert tool.version()
    assert tool.verify(made) is not None
    assert tool.backup_files(made), "the backup's files are in the repository"
    assert tool.wal_path(last) is not None

    node = tool.restore(made, settings={"archive_mode": "off"})
    assert rows(node) == 1500 and not node.in_recovery()
    paused = tool.restore(made, RecoveryTarget.immediate(action="pause"), name="paused")
    assert paused.in_recovery() and rows(paused) == 1000


def test_what_a_user_can_get_wrong_reads_clearly(pgdr: Topology, tool: BackupTool) -> None:
    primary = pgdr.primary()
    tool.attach(primary)
    with pytest.raises(ConfigError, match="weekly"):
        tool.backup(primary, "weekly")
    made = tool.backup(primary)
    if "delta" not in tool.capabilities:
        primary.stop()
        with pytest.raises(ConfigError, match="no delta restore"):
            tool.restore(made, delta=primary)
        return
    with pytest.raises(RecoveryError, match=f"into {primary.name} needs the server stopped"):
        tool.restore(made, delta=primary)


def test_no_password_in_any_file_the_tool_wrote(pgdr: Topology, tool: BackupTool) -> None:
    primary = pgdr.primary()
    tool.attach(primary)
    tool.backup(primary)
    secrets = (pgdr.credentials.password, pgdr.credentials.replication_password)
    leaks = []
    for path in Path(pgdr.root).rglob("*"):
        if not path.is_file() or path == pgdr.credentials.passfile:
            continue
        if path.stat().st_size > 1_000_000 or path.suffix in (".lz4", ".gz"):
            continue
        text = path.read_bytes().decode(errors="replace")
        leaks += [str(path) for secret in secrets if secret in text]
    assert leaks == [], f"passwords written outside the pgpass file: {leaks}"


def test_pgbackrest_refusing_this_postgres_is_a_skip_naming_its_version(
    pgdr: Topology,
) -> None:
    if pgdr.major < 18:
        pytest.skip(f"pgBackRest 2.45 supports PostgreSQL {pgdr.major}: nothing refused")
    tool = backup_tool("pgbackrest", pgdr)
    with pytest.raises(ToolRefusesVersion) as caught:
        tool.attach(pgdr.primary())
    text = str(caught.value)
    assert text.startswith(f"pgBackRest {tool.version()} refuses PostgreSQL {pgdr.major}.")
    assert "VersionNotSupportedError" in text and "--pgdr-postgres 15" in text


def test_restore_carries_the_source_servers_settings(pgdr: Topology, tool: BackupTool) -> None:
    """Recovery refuses a max_connections below the primary's: the restored node must get
    the settings a copy of the primary's data directory carries."""
    primary = pgdr.primary(settings={"max_connections": 100})
    tool.attach(primary)
    made = tool.backup(primary)
    node = tool.restore(made, RecoveryTarget.immediate(), settings={"archive_mode": "off"})
    assert node.scalar("SHOW max_connections") == "100"


def test_a_tablespace_restores_into_the_new_nodes_own_directory(
    pgdr: Topology, tool: BackupTool
) -> None:
    """By default pgBackRest and Barman put a tablespace back where the backup found it: on
    this machine, the live primary's own directory. Each restore must get its own copy."""
    primary = pgdr.primary()
    tool.attach(primary)
    where = pgdr.host.make_dir(pgdr.root / "team_ts")
    primary.query(f"CREATE TABLESPACE team_ts LOCATION '{where}'")
    primary.query(
        "CREATE TABLE t TABLESPACE team_ts AS SELECT g AS id FROM generate_series(1, 500) g"
    )
    made = tool.backup(primary)
    before = sorted(p.relative_to(where) for p in where.rglob("*"))
    node = tool.restore(made, RecoveryTarget.immediate(), settings={"archive_mode": "off"})
    located = str(
        node.scalar(
            "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'team_ts'"
        )
    )
    assert located != str(where) and located.startswith(str(node.root)), located
    assert rows(node) == 500
    node.query("INSERT INTO t SELECT generate_series(501, 600)")  # the copy is the node's own
    primary.query("CHECKPOINT")
    assert rows(primary) == 500
    assert sorted(p.relative_to(where) for p in where.rglob("*")) == before
