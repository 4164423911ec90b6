"""The built-in drills on a team's own database: its schema, settings and seed, wherever the
team keeps its conftest (issue: drills on the team's own database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_pgdr import fingerprint
from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.drill.teamdata import (
    BuiltinData,
    FilesData,
    SeedData,
    accidental_delete,
    choose_team_data,
)
from pytest_pgdr.drill.verify import assert_indexes_ok, differences

SCHEMA = Path(__file__).parent / "data" / "team_schema.sql"
TEAM_INI = f"""
[pytest]
testpaths = tests
pgdr_schema = {SCHEMA}
pgdr_database = team's db
pgdr_server_settings =
    max_connections = 100
    timezone = Asia/Kolkata
"""
BUILTINS = "test_pitr_to_restore_point_after_accidental_delete"


def team_repo(pytester: pytest.Pytester, ini: str, conftest: str = "") -> None:
    pytester.makefile(".ini", pytest=ini)
    tests = pytester.mkdir("tests")
    (tests / "test_nothing.py").write_text("def test_app(): pass\n")
    if conftest:
        (tests / "conftest.py").write_text(conftest)


def test_builtin_drills_run_on_the_team_schema_and_settings(pytester: pytest.Pytester) -> None:
    team_repo(pytester, TEAM_INI)
    result = pytester.runpytest_subprocess(
        "--pgdr", "--pgdr-scenarios=only", "-k", BUILTINS, "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            'pgdr: database "team\'s db": schema */team_schema.sql (ini pgdr_schema);'
            " victim table auto; server settings max_connections=100, timezone=Asia/Kolkata"
        ]
    )


def test_a_seed_hook_in_tests_conftest_reaches_the_builtin_drills(
    pytester: pytest.Pytester,
) -> None:
    hook = f"""
def pytest_pgdr_seed(node, dbname):
    node.psql(open({str(SCHEMA)!r}).read(), dbname)
    node.psql("CREATE TABLE seeded_by_hook (id int)", dbname)
    return True
"""
    team_repo(pytester, "[pytest]\ntestpaths = tests\n", hook)
    drill = """
def test_sees_it(pgdr_primary, pgdr_data):
    assert pgdr_primary.scalar("SELECT count(*) FROM accounts", dbname=pgdr_data.dbname) == 300
    assert pgdr_primary.scalar("SELECT to_regclass('seeded_by_hook')::text",
                               dbname=pgdr_data.dbname) == "seeded_by_hook"
"""
    (pytester.path / "tests" / "test_drill.py").write_text(drill)
    result = pytester.runpytest_subprocess(
        "--pgdr", "-k", f"{BUILTINS} or sees_it", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    # the header is written before conftests load; the summary says what the drills protected
    result.stdout.fnmatch_lines(
        ["pgdr: drills protected the team data from the pytest_pgdr_seed hook in database 'app'"]
    )


def test_team_settings_reach_every_node_and_the_template_stays_utc(
    pgdr_session, pgdr_install
) -> None:
    from dataclasses import replace

    from pytest_pgdr.basics.settings import resolve

    team = resolve({}, {"server_settings": "max_connections = 100\ntimezone = Asia/Kolkata"})
    settings = replace(pgdr_session.settings, server_settings=team.server_settings)
    saved = pgdr_session.settings
    pgdr_session.settings = settings
    topo = pgdr_session.topology(pgdr_install, "team_settings")
    pgdr_session.settings = saved
    try:
        primary = topo.primary()
        replica = topo.replica(primary)
        topo.wait_caught_up(primary, replica)
        restored = topo.restore(topo.backup(primary))
        for node in (primary, replica, restored):
            assert node.scalar("SHOW max_connections") == "100"
            assert node.scalar("SHOW timezone") == "Asia/Kolkata"
    finally:
        topo.close()


def test_fingerprint_catches_a_lost_trigger_default_and_matview_rows(pgdr) -> None:
    node = pgdr.primary(archive=False)
    node.psql(SCHEMA.read_text())
    node.query("REFRESH MATERIALIZED VIEW revenue_by_state")
    before = fingerprint(node)
    assert_indexes_ok(node, required=True)  # the partitioned parent's index is not "corrupt"
    node.psql(
        "DROP TRIGGER accounts_audit ON accounts;"
        " ALTER TABLE accounts ALTER state DROP DEFAULT;"
        " TRUNCATE payments_2025;"
        " REFRESH MATERIALIZED VIEW revenue_by_state;"
    )
    found = "\n".join(differences(before, fingerprint(node)))
    assert "trigger accounts_audit on accounts: missing" in found
    assert "column public.accounts.state: 'account_state not null', expected" in found
    assert "table public.revenue_by_state: same 3 rows count but different content" in found
    assert "table public.payments_2025: 0 rows" in found


def test_the_victim_is_the_largest_table_nothing_depends_on(pgdr) -> None:
    node = pgdr.primary(archive=False)
    data = FilesData([SCHEMA], "team")
    data.load(node)
    node.query("ANALYZE", dbname="team")
    assert data.victim(node) == "public.audit_log"  # accounts: referenced by a key
    accident = accidental_delete(node, "team", "public.accounts")  # keys not enforced
    assert accident.deleted == 300


def test_choose_one_member_and_name_missing_files(tmp_path: Path) -> None:
    assert isinstance(choose_team_data([], None), BuiltinData)
    assert isinstance(choose_team_data([str(SCHEMA)], None), FilesData)
    assert isinstance(choose_team_data([], lambda node, db: None), SeedData)
    with pytest.raises(ConfigError, match="do not exist: .*nope.sql"):
        choose_team_data([str(tmp_path / "nope.sql")], None)
    with pytest.raises(ConfigError, match="Both a pytest_pgdr_seed hook and pgdr_schema"):
        choose_team_data([str(SCHEMA)], lambda node, db: None)


def test_a_missing_extension_names_the_installations_that_have_it(pgdr, tmp_path: Path) -> None:
    from pytest_pgdr.basics.errors import PgdrError

    schema = tmp_path / "ext.sql"
    schema.write_text("CREATE EXTENSION pgdr_no_such_extension;\n")
    with pytest.raises(PgdrError) as info:
        FilesData([schema], "ext").load(pgdr.primary(archive=False))
    text = str(info.value)
    assert "needs the extension 'pgdr_no_such_extension'" in text
    assert "no installation here has it" in text


def test_replicas_and_restores_inherit_the_primary_settings(pgdr) -> None:
    primary = pgdr.primary(settings={"max_connections": 100, "timezone": "Asia/Kolkata"})
    backup = pgdr.backup(primary)
    replica = pgdr.replica(primary)  # would refuse to start with the default 50 connections
    pgdr.wait_caught_up(primary, replica)
    restored = pgdr.restore(backup)
    for node in (replica, restored):
        assert node.scalar("SHOW max_connections") == "100"
        assert node.scalar("SHOW timezone") == "Asia/Kolkata"
    assert "primary_conninfo" not in restored.conf
