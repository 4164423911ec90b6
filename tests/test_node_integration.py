"""The node API against real servers, including every bad input a user can cause."""

from __future__ import annotations

import os
import time

import psycopg
import pytest

from pytest_pgdr import (
    RecoveryError,
    RecoveryTarget,
    ServerStartError,
    ToolError,
    WaitTimeout,
)
from pytest_pgdr.basics.errors import OsUserError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.pgcontrol import system_identifier
from pytest_pgdr.hosts.osuser import resolve_os_user

pytestmark = pytest.mark.pgdr


def test_lifecycle_stop_start_restart_reload(pgdr):
    node = pgdr.primary(archive=False)
    node.query("CREATE TABLE t AS SELECT generate_series(1, 10) AS i")
    node.stop("fast")
    assert not node.is_running() and node.exit_code() == 0
    node.start()
    node.restart()
    node.configure(work_mem="7MB")
    node.reload()
    assert node.scalar("SHOW work_mem") == "7MB"
    assert node.scalar("SELECT count(*) FROM t") == 10


def test_crash_recovery_keeps_committed_rows(pgdr):
    node = pgdr.primary(archive=False)
    node.query("CREATE TABLE t (i int)")
    node.query("INSERT INTO t SELECT generate_series(1, 500)")
    offset = node.log.offset()
    node.crash()
    assert not node.is_running()
    node.start()
    assert node.scalar("SELECT count(*) FROM t") == 500
    assert node.log.grep("database system was interrupted|not properly shut down", offset)


def test_state_lsn_timeline_and_log_offsets(pgdr):
    node = pgdr.primary()
    before = node.lsn("write")
    offset = node.log.offset()
    node.query("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
    assert before < node.lsn("insert")
    assert node.timeline() == 1 and not node.in_recovery()
    node.query("DO $$ BEGIN RAISE LOG 'pgdr-marker-42'; END $$")
    assert node.log.grep("pgdr-marker-42", offset)
    assert not node.log.grep("pgdr-marker-42", node.log.offset())


def test_every_primary_has_its_own_system_identifier(pgdr):
    a, b = pgdr.primary("a", archive=False), pgdr.primary("b", archive=False)
    assert a.system_identifier() != b.system_identifier()
    assert system_identifier(pgdr.host, a.datadir) == a.system_identifier()


def test_replica_refuses_the_wrong_cluster(pgdr):
    a, b = pgdr.primary("a", archive=False), pgdr.primary("b", archive=False)
    replica = pgdr.replica(a, start=False)
    pgdr._point_at(replica, b, None)  # point it at a different cluster
    replica.start(wait=False)
    found = poll(
        lambda: replica.log.grep("database system identifier differs"),
        "the replica to notice the foreign cluster",
        timeout=20,
    )
    assert found


def test_security_defaults(pgdr):
    node = pgdr.primary()
    # where the host puts it (loopback here; a container's private network, published on
    # loopback only, which tests/test_docker_host.py checks), and clients come from loopback
    assert node.scalar("SHOW listen_addresses") == node.host.listen_addresses()
    assert node.host.client_address == "127.0.0.1"
    modes = node.host.run(["stat", "-c", "%a", str(node.datadir), str(node.sockdir)]).stdout
    assert modes.split() == ["700", "700"]
    hba = node.query("SELECT type, auth_method FROM pg_hba_file_rules")
    assert ("host", "trust") not in hba and ("host", "scram-sha-256") in hba
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(node.conninfo(), password="wrong", connect_timeout=5)
    password = node.credentials.password
    assert password not in node.log.since(0)
    assert password not in node.host.read_text(node.datadir / "pgdr.conf")


def test_password_never_in_error_messages(pgdr):
    node = pgdr.primary(archive=False)
    err = ToolError(f"failed with {node.credentials.password}")
    assert node.credentials.password not in str(err)


def test_bad_setting_fails_start_with_log_lines(pgdr):
    node = pgdr.primary(archive=False, start=False)
    node.configure(shared_buffers="lots")
    started = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        node.start()
    assert time.monotonic() - started < 10
    text = str(info.value)
    assert "exited while starting" in text and "shared_buffers" in text


def test_tool_failure_shows_command_and_output(pgdr):
    node = pgdr.primary(archive=False)
    with pytest.raises(ToolError) as info:
        node.run_tool("pg_dump", "-d", "no_such_db")
    assert "pg_dump failed with exit code 1" in str(info.value)
    assert 'database "no_such_db" does not exist' in str(info.value)


def test_missing_program_is_clear(pgdr):
    node = pgdr.primary(archive=False, start=False)
    with pytest.raises(Exception, match="has no program 'pg_nothing'"):
        node.run_tool("pg_nothing")


def test_wait_timeout_names_what_and_shows_log(pgdr):
    node = pgdr.primary(archive=False)
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        node.poll_query("SELECT false", "a condition that never holds", timeout=0.3)
    assert time.monotonic() - started < 2
    assert "waiting for a condition that never holds" in str(info.value)
    assert "server log" in str(info.value) or "postgres.log" in str(info.value)


def test_unknown_os_user_is_clear():
    if os.geteuid() != 0:
        pytest.skip("choosing another OS user needs root")
    with pytest.raises(OsUserError, match="does not exist"):
        resolve_os_user("no_such_user_pgdr")


def test_unreachable_target_fails_fast_with_postgres_message(pgdr, pgdr_primary):
    backup = pgdr.backup(pgdr_primary)
    pgdr.wait_archived(pgdr_primary)
    started = time.monotonic()
    with pytest.raises(RecoveryError) as info:
        pgdr.restore(backup, RecoveryTarget.name("never_created"))
    assert time.monotonic() - started < 20
    assert "recovery ended before configured recovery target was reached" in str(info.value)


def test_missing_wal_segment_fails_loudly(pgdr, pgdr_primary):
    backup = pgdr.backup(pgdr_primary)
    pgdr_primary.query("CREATE TABLE t AS SELECT generate_series(1, 100) AS i")
    pgdr_primary.scalar("SELECT pg_create_restore_point('after_t')")
    segment = pgdr.wait_archived(pgdr_primary)
    pgdr.host.remove_file(pgdr.archive.wal / segment)
    with pytest.raises(RecoveryError, match="recovery ended before configured recovery target"):
        pgdr.restore(backup, RecoveryTarget.name("after_t"))


def test_replica_streams_and_promotes(pgdr, pgdr_primary, pgdr_replica):
    insert = "INSERT INTO employees (full_name, dept, salary) VALUES ('N', 'IT', 5)"
    pgdr_primary.query(insert, dbname="app")
    pgdr.wait_caught_up(pgdr_primary, pgdr_replica)
    assert pgdr_replica.in_recovery()
    assert pgdr_replica.scalar("SELECT count(*) FROM employees", dbname="app") == 1001
    pgdr_primary.crash()
    pgdr.promote(pgdr_replica)
    assert pgdr_replica.timeline() == 2
    pgdr_replica.query(insert, dbname="app")
    assert pgdr_replica.scalar("SELECT count(*) FROM employees", dbname="app") == 1002


def test_a_refused_start_keeps_postgres_detail_and_hint(pgdr):
    primary = pgdr.primary(archive=False)
    with pytest.raises(ServerStartError) as info:
        pgdr.replica(primary, settings={"max_connections": 10})
    text = str(info.value)
    assert "recovery aborted because of insufficient parameter settings" in text
    assert "DETAIL:  max_connections = 10 is a lower setting than on the primary" in text
    assert "HINT:  You can restart the server after making the necessary" in text


def test_template_time_zone_does_not_depend_on_who_built_the_cache(
    tmp_path, monkeypatch, pgdr_install
):
    from pytest_pgdr import HarnessSession, Settings

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    session = HarnessSession(Settings(enabled=True, cache_dir=str(tmp_path / "cache")))
    topo = session.topology(pgdr_install, "tz")
    try:
        node = topo.primary(archive=False)
        assert node.scalar("SHOW timezone") == "UTC"
        assert node.scalar("SHOW lc_messages") == "C"
    finally:
        topo.close()
        session.close()


def test_a_primary_created_stopped_gets_its_passwords_when_started(pgdr):
    node = pgdr.primary(archive=False, start=False)
    node.configure(work_mem="8MB")
    node.start()
    assert node.scalar("SHOW work_mem") == "8MB"  # over TCP, with the generated password


def test_a_restore_point_name_with_a_newline_lands_in_the_config_intact(pgdr):
    from pytest_pgdr.cluster.conf import conf_value

    assert conf_value("before\nrelease") == "'before\\nrelease'"
    primary = pgdr.primary()
    backup = pgdr.backup(primary)
    primary.scalar("SELECT pg_create_restore_point(%s)", ["odd\nname 'quoted'"])
    pgdr.wait_archived(primary)
    restored = pgdr.restore(backup, RecoveryTarget.name("odd\nname 'quoted'"))
    assert restored.log.grep(r"recovery stopping at restore point")
