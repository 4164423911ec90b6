"""The plugin seen from a user's repository, through pytester sub-sessions."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

DRILL = """
import pytest

@pytest.mark.pgdr
def test_marked_drill():
    pass

def test_uses_primary(pgdr_primary, pgdr_data):
    assert pgdr_primary.scalar("SELECT count(*) FROM employees", dbname=pgdr_data.dbname) == 1000

def test_plain():
    pass
"""


def test_without_opt_in_drills_skip_with_how_to(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DRILL)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*opt in with 'pytest --pgdr'*"])
    result.stdout.fnmatch_lines(["pgdr: drills off (run with --pgdr to enable)"])


def test_options_are_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--pgdr *", "*--pgdr-postgres=*", "*--pgdr-keep=*"])
    result.stdout.fnmatch_lines(["*pgdr_postgres *"])


def test_bad_option_is_a_usage_error_listing_valid_values(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--pgdr-keep=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Bad value 'sometimes' for --pgdr-keep*never, failed, always*"])


def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npgdr_backend = cloud\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Bad value 'cloud' for --pgdr-backend*Valid values: local*"])


def test_missing_binaries_is_one_clear_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--pgdr", "--pgdr-postgres=/nonexistent/pg/bin")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*installation '/nonexistent/pg/bin' is unusable*lacks postgres*"])
    assert "Traceback" not in result.stderr.str()


def test_header_says_what_was_chosen_and_from_where(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npgdr_keep = failed\n")
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", "--collect-only")
    result.stdout.fnmatch_lines(
        [
            "pgdr: drills on; backend local (default); built-in scenarios none (command line);"
            " strict * (*)",
            "pgdr: PostgreSQL 18.* (embedded, *) [[]pg18-embedded, local/pg18[]] (default)",
            "*keep failed (ini pgdr_keep)",
        ]
    )


def test_builtin_scenarios_join_directory_runs_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_mine(): pass")
    result = pytester.runpytest("--pgdr", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_pitr_accidental_delete.py::*[[]pg18-embedded[]]"])
    result = pytester.runpytest("--pgdr", "--collect-only", "-q", "test_mine.py")
    assert "test_pitr_accidental_delete" not in result.stdout.str()


def test_drill_runs_and_fixture_override_brings_own_data(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pytest

@pytest.fixture
def pgdr_seed():
    def seed(node):
        node.psql("CREATE TABLE accounts(id int primary key, balance int);"
                  "INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 50) g;")
    return seed
""")
    pytester.makepyfile("""
from pytest_pgdr import RecoveryTarget, fingerprint, assert_same

def test_own_data_survives_pitr(pgdr, pgdr_primary, pgdr_measure):
    backup = pgdr.backup(pgdr_primary)
    expected = fingerprint(pgdr_primary)
    pgdr_primary.scalar("SELECT pg_create_restore_point('rp')")
    pgdr_primary.query("DELETE FROM accounts")
    pgdr.wait_archived(pgdr_primary)
    rto = pgdr_measure.declare_disaster()
    node = pgdr.restore(backup, RecoveryTarget.name("rp"), stopwatch=rto)
    rto.stop("verify")
    assert_same(expected, fingerprint(node))
    assert node.scalar("SELECT sum(balance) FROM accounts") == 12750
""")
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", "--junitxml=out.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*pgdr recovery times*", "*RTO*restore base backup*promote*"])
    assert 'name="pgdr_rto_s"' in (pytester.path / "out.xml").read_text()


def test_version_gate_skips_with_the_version(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
import pytest

@pytest.mark.pgdr(min_version=99)
def test_future(pgdr):
    pass
""")
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs PostgreSQL 99 or newer; this is PostgreSQL 18*"])


def test_xdist_two_workers_no_collisions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
import pytest

@pytest.mark.parametrize("i", range(4))
def test_primary_and_replica(pgdr, pgdr_primary, pgdr_replica, i):
    pgdr_primary.query("INSERT INTO employees (full_name, dept, salary) VALUES ('x', 'IT', 1)",
                       dbname="app")
    pgdr.wait_caught_up(pgdr_primary, pgdr_replica)
    assert pgdr_replica.scalar("SELECT count(*) FROM employees", dbname="app") == 1001
""")
    result = pytester.runpytest_subprocess("--pgdr", "--pgdr-scenarios=none", "-n", "2")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*2 workers [[]4 items[]]*", "pgdr: ran 4 drills: local/pg18 4"])


def _dead_docker_socket(tmp_path: Path) -> str:
    """A unix socket nobody listens on: connecting is refused at once."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
    return f"unix://{path}"


def test_docker_absent_skips_docker_drills_naming_docker_host(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", _dead_docker_socket(tmp_path))
    monkeypatch.delenv("CI", raising=False)  # strict mode (on in CI) would fail instead
    pytester.makepyfile("""
def test_primary(pgdr_primary):
    assert pgdr_primary.scalar("SELECT 1") == 1
""")
    result = pytester.runpytest_subprocess(
        "--pgdr", "--pgdr-scenarios=none", "-rs", "--pgdr-backend=local,docker"
    )
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*strict off (default: auto, CI is not set)",
            "pgdr: docker:pytest-pgdr/pg18:latest [[]docker/pg18[]]: its drills will be skipped:"
            " The docker backend was chosen but Docker is not reachable*DOCKER_HOST=unix://*",
            "pgdr: ran 1 drill: local/pg18 1; skipped 2 (docker/pg15 1, docker/pg18 1)",
            "SKIPPED *Docker is not reachable*DOCKER_HOST=unix://*docker.sock*",
        ]
    )


@pytest.mark.parametrize("how", ["--pgdr-strict=on", "CI=true", "PGDR_STRICT=on"])
def test_strict_mode_fails_the_run_when_docker_is_absent(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", _dead_docker_socket(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    args = ["--pgdr", "--pgdr-scenarios=none", "--pgdr-backend=docker"]
    if how.startswith("--"):
        args.append(how)
    else:
        monkeypatch.setenv(*how.split("="))
    pytester.makepyfile("def test_primary(pgdr_primary): pass")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*pytest-pgdr: The docker backend was chosen but Docker is not reachable."
            "*DOCKER_HOST=unix://*docker.sock*Strict mode is on (*)*--pgdr-strict=off*"
        ]
    )
    assert "Traceback" not in result.stderr.str()


def test_bad_backend_lists_valid_ones(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--pgdr-backend=k8s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Valid values: local, docker*"])


def test_scenarios_only_runs_just_the_builtin_drills(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_mine(): pass")
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=only", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_pitr_accidental_delete.py::*"])
    assert "test_mine" not in result.stdout.str()


def test_keep_failed_keeps_data_and_logs_of_failed_drills_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
def test_fails(pgdr_primary):
    assert pgdr_primary.scalar("SELECT count(*) FROM employees", dbname="app") == 99

def test_passes(pgdr_primary):
    assert pgdr_primary.scalar("SELECT count(*) FROM employees", dbname="app") == 1000
""")
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", "--pgdr-keep=failed")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*pgdr kept data directories*"])
    lines = result.stdout.lines
    kept = [
        line
        for line in lines[lines.index(next(x for x in lines if "kept data" in x)) + 1 :]
        if "pytest-pgdr-kept" in line
    ]
    assert len(kept) == 1 and "test_fails" in kept[0]
    import pathlib
    import shutil

    root = pathlib.Path(kept[0].strip())
    try:
        assert (root / "primary" / "postgres.log").is_file()
        assert (root / "primary" / "data" / "PG_VERSION").is_file()
        assert not (root / "primary" / "data" / "postmaster.pid").exists()  # server stopped
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_drills_installed_in_a_virtualenv_inside_the_repo_are_collected_once(
    tmp_path: Path,
) -> None:
    """pytest never recurses into a virtualenv: the path down to the installed drills is let
    through, the rest of the virtualenv is not, and lib64 (a link to lib) is not walked twice."""
    from pytest_pgdr.plugin.scenarios import ThroughVenv, venv_holding

    venv = tmp_path / ".venv"
    drills = venv / "lib" / "python3.11" / "site-packages" / "pytest_pgdr" / "scenarios"
    drills.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib64").symlink_to(venv / "lib")
    assert venv_holding(drills) == venv
    assert venv_holding(tmp_path / "tests") is None
    through = ThroughVenv(venv, drills)
    verdicts = {
        venv: False,
        venv / "lib": False,
        drills: False,
        drills / "test_failover.py": None,
        venv / "lib64": True,
        venv / "bin": True,
        drills.parent.parent / "faker": True,
        tmp_path / "tests": None,
    }
    for path, ignored in verdicts.items():
        assert through.pytest_ignore_collect(path) is ignored, path
