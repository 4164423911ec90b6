"""The client paths against real servers and the real pgbouncer / pgpool-II (run with
``--pgdr``): a hostile database name end to end, a hostile password in pgbouncer's userlist,
repoint, reaping, and the skip (or strict failure) when a pooler is not installed."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from pytest_pgdr import Topology
from pytest_pgdr.drill.dataset import create_database
from pytest_pgdr.ha import pooler
from pytest_pgdr.ha.pgbouncer import PgBouncer, render_ini, userlist_line
from pytest_pgdr.ha.pooler import ClientPath, Daemon, backend_address

pytestmark = pytest.mark.pgdr

HOSTILE_DB = 'we\'ird "db" ; # = x'
HOSTILE_PW = "p'a\"s s;#=\\w:rd"
MakePath = Callable[..., ClientPath]


@pytest.mark.parametrize("kind", pooler.KINDS)
def test_a_hostile_database_name_through_every_path(
    pgdr: Topology, pgdr_client_path: MakePath, kind: str
) -> None:
    primary = pgdr.primary(archive=False)
    create_database(primary, HOSTILE_DB)
    path = pgdr_client_path(kind, [primary], dbnames=(HOSTILE_DB,))
    assert "password" not in psycopg.conninfo.conninfo_to_dict(path.conninfo(HOSTILE_DB))
    with psycopg.connect(path.conninfo(HOSTILE_DB), autocommit=True) as conn:
        row = conn.execute("SELECT current_database(), current_setting('cluster_name')")
        assert row.fetchone() == (HOSTILE_DB, primary.name)
    assert path.describe()


def test_pgbouncer_reads_a_hostile_password_from_its_userlist(pgdr: Topology) -> None:
    pooler.require_program("pgbouncer")
    daemon = Daemon(pgdr, "pgb_hostile")
    try:
        userlist = daemon.dir / "userlist.txt"
        pgdr.host.write_file(userlist, userlist_line('us"er', HOSTILE_PW))
        listen = (pgdr.host.listen_addresses(), daemon.listen_port)
        ini = render_ini([], ("127.0.0.1", 1), listen, str(userlist), 'us"er')
        pgdr.host.write_file(daemon.dir / "pgbouncer.ini", ini)
        daemon.spawn([str(pooler.find_program("pgbouncer")), str(daemon.dir / "pgbouncer.ini")])

        def login(password: str) -> None:
            with psycopg.connect(
                host=pgdr.host.client_address,
                port=daemon.port,
                user='us"er',
                password=password,
                dbname="pgbouncer",
                connect_timeout=5,
            ):
                pass

        daemon.wait_ready(lambda: login(HOSTILE_PW))
        with pytest.raises(psycopg.OperationalError) as refused:
            login(HOSTILE_PW + "x")
        assert HOSTILE_PW not in str(refused.value)
    finally:
        daemon.close()


def test_pgbouncer_repoint_moves_new_sessions_and_close_reaps_it(
    pgdr: Topology, pgdr_client_path: MakePath
) -> None:
    primary = pgdr.primary(archive=False)
    other = pgdr.primary(name="other", archive=False)
    path = pgdr_client_path("pgbouncer", [primary])
    assert isinstance(path, PgBouncer)

    def server() -> str:
        with psycopg.connect(path.conninfo(), autocommit=True) as conn:
            return str(conn.execute("SELECT current_setting('cluster_name')").fetchone()[0])  # type: ignore[index]

    assert server() == primary.name
    path.repoint(other)
    assert server() == other.name and path.repoints == 1
    assert path.databases()["postgres"][1] == str(backend_address(other)[1])
    assert path.daemon.proc is not None
    proc = path.daemon.proc
    path.close()
    path.close()  # twice is fine
    assert proc.poll() is not None, "pgbouncer still runs after close()"
    with pytest.raises(psycopg.OperationalError):
        server()


def test_a_missing_pooler_skips_naming_the_package(
    pgdr: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the fixture machinery a PoolerUnavailable is a skip (a failure under CI=true);
    here it is raised, before anything starts."""
    primary = pgdr.primary(archive=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(pooler, "SBIN", ())
    with pytest.raises(pooler.PoolerUnavailable, match="apt-get install pgpool2"):
        pooler.client_path("pgpool", pgdr, [primary])
    assert not (pgdr.root / "pgpool").exists()


CONFTEST_WITHOUT_POOLERS = """
import pytest
from pytest_pgdr.ha import pooler

@pytest.fixture(autouse=True)
def _no_poolers(monkeypatch):
    monkeypatch.setattr(pooler, "find_program", lambda program: None)
"""
DRILL_THROUGH_PGBOUNCER = """
import pytest

@pytest.mark.pgdr
def test_through_pgbouncer(pgdr, pgdr_client_path):
    pgdr_client_path("pgbouncer", [pgdr.primary(archive=False)])
"""


@pytest.mark.parametrize(
    ("strict", "ha", "outcome"),
    [("off", "required", "skipped"), ("on", "installed", "skipped"), ("on", "required", "failed")],
)
def test_the_fixture_skips_a_missing_pooler_or_fails_in_strict_mode(
    pytester: pytest.Pytester, strict: str, ha: str, outcome: str
) -> None:
    pytester.makeconftest(CONFTEST_WITHOUT_POOLERS)
    pytester.makepyfile(test_drill=DRILL_THROUGH_PGBOUNCER)
    result = pytester.runpytest_subprocess(
        "--pgdr",
        "--pgdr-scenarios=none",
        f"--pgdr-strict={strict}",
        f"--pgdr-ha={ha}",
        "-rsf",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*apt-get install pgbouncer*"])
