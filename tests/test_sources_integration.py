"""The nightly restore of real backups, end to end: backups made here with the raw tools
(pg_dump, pg_dumpall, pg_basebackup, cp as archive_command, pgbackrest), then a team-style
repository points pytest-pgdr at them. Good backups pass with their figures in the JSON
report; every file of every source is byte-identical afterwards."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_pgdr import Node, Topology
from pytest_pgdr.plugin import scenarios_dir

pytestmark = pytest.mark.pgdr


@pytest.fixture
def local_tools(pgdr: Topology) -> Topology:
    """The team's backups are made here with this machine's own tools, as a team makes them;
    a docker parametrization has no such tools (its restore is drilled by
    test_docker_backend_restores_a_staged_copy, from backups made on this machine)."""
    if pgdr.inst.image:
        pytest.skip(
            f"backups are built with this machine's tools, not inside {pgdr.inst.image}; the"
            " docker backend's restore has its own test"
        )
    return pgdr


DRILL = scenarios_dir() / "test_nightly_restore.py"
TEAM_SQL = """
CREATE ROLE app_owner NOLOGIN;
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers,
                     amount numeric(10,2) NOT NULL, placed_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX orders_placed_at ON orders (placed_at);
ALTER TABLE orders OWNER TO app_owner;
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO orders (customer_id, amount, placed_at)
  SELECT 1 + g % 200, g / 10.0, now() - interval '1 minute' * (3000 - g)
  FROM generate_series(1, 3000) g;
"""
CHECKS = """
tables = ["public.orders", "public.customers"]
max_backup_age = "1h"

[min_rows]
"public.orders" = 3000

[max_age]
"public.orders.placed_at" = "1h"

[assert]
"every order has its customer" = '''SELECT NOT EXISTS (SELECT 1 FROM orders o
    LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL)'''
"""


# helpers shared with test_sources_faults.py ---------------------------------------------
def team_primary(pgdr: Topology, wal_dir: Path | None = None) -> Node:
    """A primary holding the team's tables in ``app`` (archiving with plain cp, if asked)."""
    settings: dict[str, object] = {}
    if wal_dir is not None:
        settings = {
            "archive_mode": "on",
            "archive_command": f"test ! -f {shlex.quote(str(wal_dir))}/%f &&"
            f" cp %p {shlex.quote(str(wal_dir))}/%f",
        }
    node = pgdr.primary(name="team", archive=False, settings=settings)
    node.query("CREATE DATABASE app")
    node.psql(TEAM_SQL, "app")
    return node


def backups_dir(pgdr: Topology, name: str = "backups") -> Path:
    return pgdr.host.make_dir(pgdr.root / name, 0o755)


def digest(paths: list[Path]) -> dict[str, str]:
    """sha256, size and mode of every file under ``paths`` (the read-only proof)."""
    out: dict[str, str] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            info = path.stat()
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path)] = f"{sha} {info.st_size} {oct(info.st_mode)} {info.st_mtime_ns}"
    return out


def run_team_repo(
    pytester: pytest.Pytester,
    pgdr: Topology,
    sources: dict[str, str],
    checks: str = CHECKS,
    *more: str,
    backend: tuple[str, ...] = ("--pgdr-backend", "local"),
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """A team's repository: sources in its ini file, checks in a TOML file; the nightly job
    is ``pytest --pgdr`` on the built-in drill. Returns the run and its JSON report."""
    lines = "".join(f"    {name} = {value}\n" for name, value in sources.items())
    pytester.makefile(".ini", pytest=f"[pytest]\npgdr_source =\n{lines}")
    (pytester.path / "checks.toml").write_text(checks)
    report = pytester.path / "night.json"
    result = pytester.runpytest_subprocess(
        str(DRILL),
        "-c",
        "pytest.ini",
        "--rootdir",
        str(pytester.path),
        "--pgdr",
        "--pgdr-postgres",
        pgdr.inst.spec,
        *backend,
        "--pgdr-source-checks",
        "checks.toml",
        "--pgdr-report",
        str(report),
        "--junitxml",
        "junit.xml",
        "-p",
        "no:cacheprovider",
        "-rA",
        *more,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return result, data


def exactly(source: str, rows: int) -> str:
    """Checks for one source that stops before the newest rows: exactly ``rows`` orders."""
    return (
        f'[source.{source}.min_rows]\n"public.orders" = {rows}\n[source.{source}.assert]\n'
        f'"exactly {rows} orders" = "SELECT count(*) = {rows} FROM orders"\n'
    )


def drills_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    drills = data.get("drills", [])
    assert isinstance(drills, list)
    return {
        str(d["id"]).rsplit("[", 1)[-1].rstrip("]"): d
        for d in drills
        if "test_nightly_restore[" in str(d["id"])
    }


# the tests ---------------------------------------------------------------------------------
def test_every_dump_format_restores_with_its_figures(
    pytester: pytest.Pytester, local_tools: Topology
) -> None:
    pgdr = local_tools
    node = team_primary(pgdr)
    out = backups_dir(pgdr)
    for fmt, name in (("c", "app.dump"), ("d", "app.dir"), ("t", "app.tar"), ("p", "app.sql")):
        node.run_tool("pg_dump", f"-F{fmt}", "-f", out / name, "-d", "app")
    node.run_tool("pg_dumpall", "-f", out / "cluster.sql")
    before = digest([out])
    own = pytester.makepyfile(
        test_own_checks="""
        def test_customers_survive(pgdr_restored):
            node = pgdr_restored.node
            assert node.scalar("SELECT count(*) FROM customers", dbname="app") == 200
        """
    )

    result, data = run_team_repo(
        pytester,
        pgdr,
        {
            "custom": f"dump:{out}/app.dump",
            "directory": f"dump:{out}/app.dir?jobs=2",
            "tar": f"dump:{out}/app.tar",
            "plain": f"dump:{out}/app.sql?dbname=app",
            "cluster": f"dumpall:{out}/cluster.sql",
        },
        CHECKS,
        str(own),
    )
    assert result.ret == 0, result.stdout.str()[-4000:]
    result.assert_outcomes(passed=10)  # the drill and the team's own test, per source
    assert digest([out]) == before, "a dump changed while it was restored"
    drills = drills_of(data)
    assert set(drills) == {"custom", "directory", "tar", "plain", "cluster"}
    custom = drills["custom"]
    assert isinstance(custom, dict)
    figures = custom["figures"]
    assert figures["restore throughput"]["value"] > 0
    assert figures["verify throughput"]["value"] > 0
    assert 0 <= figures["data age"]["value"] < 3600
    backup = custom["values"]["backup"]
    assert backup["major"] == pgdr.major and backup["databases"] == ["app"], backup
    assert backup["tool_version"].startswith("pg_dump ")
    assert "ok: " in custom["values"]["checks"]["rows in public.orders"]
    junit = (pytester.path / "junit.xml").read_text()
    for prop in ("pgdr_backup_label", "pgdr_restore_throughput", "pgdr_data_age", "pgdr_checks"):
        assert f'name="{prop}' in junit, prop


def test_base_backup_plain_and_tar_replay_the_archive_to_its_end(
    pytester: pytest.Pytester, local_tools: Topology
) -> None:
    pgdr = local_tools
    out = backups_dir(pgdr)
    wal = pgdr.host.make_dir(out / "wal", 0o755)
    node = team_primary(pgdr, wal)
    node.run_tool("pg_basebackup", "-D", out / "base", "-X", "none", "-c", "fast")
    node.run_tool("pg_basebackup", "-D", out / "tar", "-Ft", "-z", "-X", "fetch", "-c", "fast")
    node.query("SELECT pg_create_restore_point('before_release')")
    node.psql(
        "INSERT INTO orders (customer_id, amount) SELECT 1, 1 FROM generate_series(1, 500)", "app"
    )
    node.query("CHECKPOINT")
    last = node.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    node.query("SELECT pg_switch_wal()")
    node.poll_query(
        f"SELECT last_archived_wal >= '{last}' FROM pg_stat_archiver", "the last segment archived"
    )
    node.stop()
    before = digest([out])
    checks = CHECKS.replace('"public.orders" = 3000', '"public.orders" = 3500')
    checks += exactly("before", 3000) + exactly("own", 3000)

    result, data = run_team_repo(
        pytester,
        pgdr,
        {
            "plain": f"basebackup:{out}/base?wal={wal}",
            "tar": f"basebackup:{out}/tar?wal={wal}",
            "before": f"basebackup:{out}/base?wal={wal}&target=name:before_release",
            "own": f"basebackup:{out}/tar",  # no archive: the WAL the backup carries
        },
        checks,
    )
    assert result.ret == 0, result.stdout.str()[-4000:]
    result.assert_outcomes(passed=4)
    assert digest([out]) == before, "the backup or its archive changed while restored"
    plain = drills_of(data)["plain"]
    assert isinstance(plain, dict)
    phases = [p["name"] for p in plain["rto"]["phases"]]
    assert "replay WAL" in phases and "restore files" in phases, phases
    assert plain["values"]["backup"]["start_lsn"] and plain["values"]["replayed to"]


def test_pgbackrest_stanza_restores_read_only(
    pytester: pytest.Pytester, local_tools: Topology
) -> None:
    """pgBackRest 2.45 refuses PostgreSQL 18: this runs on PG 15 (CI's second version)."""
    pgdr = local_tools
    if shutil.which("pgbackrest") is None:
        pytest.skip("pgbackrest is not installed (apt-get install pgbackrest)")
    if pgdr.major >= 18:
        pytest.skip(f"pgBackRest 2.45 refuses PostgreSQL {pgdr.major}; runs on 15")
    out = backups_dir(pgdr)
    repo = pgdr.host.make_dir(out / "repo", 0o755)
    conf = out / "pgbackrest.conf"
    node = pgdr.primary(name="team", archive=False)
    pgdr.host.write_file(
        conf,
        f"[global]\nrepo1-path={repo}\nlock-path={out}/lock\nlog-path={out}/log\n"
        f"log-level-file=off\nstart-fast=y\n[main]\npg1-path={node.datadir}\n"
        f"pg1-port={node.port}\npg1-socket-path={node.sockdir}\npg1-user=postgres\n",
        0o644,
    )
    push = f"pgbackrest --config={conf} --stanza=main archive-push %p"
    node.configure(archive_mode="on", archive_command=push)
    node.restart()
    node.query("CREATE DATABASE app")
    node.psql(TEAM_SQL, "app")
    tool = ["pgbackrest", f"--config={conf}", "--stanza=main"]
    for command in ("stanza-create", "backup"):
        proc = node.host.run([*tool, command])
        assert proc.returncode == 0, proc.stdout + proc.stderr
    node.psql(
        "INSERT INTO orders (customer_id, amount) SELECT 1, 1 FROM generate_series(1, 500)", "app"
    )
    last = node.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    node.query("SELECT pg_switch_wal()")
    node.poll_query(
        f"SELECT last_archived_wal >= '{last}' FROM pg_stat_archiver", "the last segment archived"
    )
    node.stop()
    before = digest([repo])
    checks = CHECKS.replace('"public.orders" = 3000', '"public.orders" = 3500')

    result, data = run_team_repo(pytester, pgdr, {"repo": f"pgbackrest:{repo}?stanza=main"}, checks)
    assert result.ret == 0, result.stdout.str()[-4000:]
    assert digest([repo]) == before, "the pgBackRest repository changed while restored"
    backup = drills_of(data)["repo"]["values"]["backup"]
    assert backup["tool_version"] == "pgBackRest 2.45" and backup["label"].endswith("F"), backup


def test_barman_server_restores_read_only(pytester: pytest.Pytester, local_tools: Topology) -> None:
    """Barman 3.4 (Debian) supports PostgreSQL up to 15: this runs on PG 15."""
    pgdr = local_tools
    if shutil.which("barman") is None:
        pytest.skip("barman is not installed (apt-get install barman barman-cli)")
    if pgdr.major > 15:
        pytest.skip(f"Barman 3.4 predates PostgreSQL {pgdr.major}; runs on 15")
    out = backups_dir(pgdr)
    home = pgdr.host.make_dir(out / "barman", 0o755)
    incoming = pgdr.host.make_dir(pgdr.host.make_dir(home / "pg", 0o755) / "incoming", 0o755)
    node = pgdr.primary(name="team", archive=False)
    user = node.host.run(["id", "-un"]).stdout.strip()
    conf = out / "barman.conf"
    where = f"host={node.sockdir} port={node.port} user=postgres dbname=postgres"
    pgdr.host.write_file(
        conf,
        f"[barman]\nbarman_home = {home}\nbarman_user = {user}\nlog_file = {out}/barman.log\n"
        f"minimum_redundancy = 0\n[pg]\nconninfo = {where}\nstreaming_conninfo = {where}\n"
        f"backup_method = postgres\narchiver = on\nstreaming_archiver = off\n"
        f"immediate_checkpoint = true\npath_prefix = {node.inst.bindir}\n",
        0o644,
    )
    node.configure(archive_mode="on", archive_command=f"cp %p {incoming}/%f")
    node.restart()
    node.query("CREATE DATABASE app")
    node.psql(TEAM_SQL, "app")

    def barman(*args: str) -> str:
        proc = node.host.run(["barman", "-c", str(conf), *args])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def archive_all() -> None:
        last = node.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
        node.query("SELECT pg_switch_wal()")
        node.poll_query(f"SELECT last_archived_wal >= '{last}' FROM pg_stat_archiver", "archived")
        barman("archive-wal", "pg")

    archive_all()
    barman("backup", "pg")
    node.psql(
        "INSERT INTO orders (customer_id, amount) SELECT 1, 1 FROM generate_series(1, 500)", "app"
    )
    archive_all()
    backup_id = json.loads(barman("-f", "json", "list-backups", "pg"))["pg"][0]["backup_id"]
    barman("check-backup", "pg", backup_id)
    node.stop()
    (out / "barman.log").unlink(missing_ok=True)
    before = digest([home])
    checks = CHECKS.replace('"public.orders" = 3000', '"public.orders" = 3500')

    result, data = run_team_repo(pytester, pgdr, {"barman": f"barman:{conf}?server=pg"}, checks)
    assert result.ret == 0, result.stdout.str()[-4000:]
    assert digest([home]) == before, "the Barman catalogue changed while restored"
    backup = drills_of(data)["barman"]["values"]["backup"]
    assert backup["label"] == backup_id and backup["tool_version"].startswith("Barman 3.4"), backup


def test_docker_backend_restores_a_staged_copy(pytester: pytest.Pytester, pgdr: Topology) -> None:
    """Containers cannot see the source: it is copied into the sandbox first ("stage copy"),
    restored on the image of the backup's major, and the source stays byte-identical."""
    from pytest_pgdr.hosts.docker import docker_status

    if not docker_status()[0]:
        pytest.skip("Docker is not reachable: the docker backend cannot be drilled here")
    out = backups_dir(pgdr)
    wal = pgdr.host.make_dir(out / "wal", 0o755)
    node = team_primary(pgdr, wal)
    node.run_tool("pg_dump", "-Fc", "-f", out / "app.dump", "-d", "app")
    node.run_tool("pg_basebackup", "-D", out / "base", "-X", "none", "-c", "fast")
    node.psql("INSERT INTO customers VALUES (201, 'after the backup')", "app")  # WAL to switch
    last = node.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    node.query("SELECT pg_switch_wal()")
    node.poll_query(f"SELECT last_archived_wal >= '{last}' FROM pg_stat_archiver", "archived")
    node.stop()
    before = digest([out])
    image = ("--pgdr-backend", "docker", "--pgdr-image", f"pytest-pgdr/pg{pgdr.major}:latest")

    result, data = run_team_repo(
        pytester,
        pgdr,
        {"dump": f"dump:{out}/app.dump", "base": f"basebackup:{out}/base?wal={wal}"},
        CHECKS,
        backend=image,
    )
    assert result.ret == 0, result.stdout.str()[-4000:]
    assert digest([out]) == before
    for drill in drills_of(data).values():
        assert drill["backend"] == "docker", drill
        assert "stage copy" in [p["name"] for p in drill["rto"]["phases"]]
