"""No generated password in a failing drill's output: terminal (with ``-l`` locals), JUnit XML.

The drill crashes its primary and queries it, so the failure is raised inside
``Node.connect`` (psycopg's own frames included). It writes the topology's passwords to a file
for this test to look for; they must appear nowhere in what pytest printed or wrote.
"""

from __future__ import annotations

import pytest

from pytest_pgdr.cluster.credentials import Credentials, Secret

DRILL = """
import pytest


@pytest.mark.pgdr
def test_query_a_crashed_primary(pgdr):
    primary = pgdr.primary(archive=False)
    replica = pgdr.replica(primary)
    with open({dump!r}, "w") as out:
        out.write(pgdr.credentials.password + "\\n" + pgdr.credentials.replication_password)
    primary.crash()
    replica.stop()
    primary.query("SELECT 1")
"""


def test_secret_repr_is_masked(tmp_path) -> None:
    creds = Credentials.generate(tmp_path / "pgpass")
    assert creds.password not in repr(creds) and creds.password not in repr([creds.password])
    assert isinstance(creds.password, Secret) and str(creds.password) == creds.password
    assert f"{creds.password}" in creds.pgpass() and creds.password not in repr(creds.pgpass())


@pytest.mark.pgdr
def test_failing_connect_never_shows_the_password(pytester: pytest.Pytester, pgdr_install) -> None:
    dump = pytester.path / "secrets.txt"
    pytester.makepyfile(test_drill=DRILL.format(dump=str(dump)))
    if pgdr_install.image:
        where = ["--pgdr-backend=docker", f"--pgdr-image={pgdr_install.image}"]
    else:
        where = ["--pgdr-backend=local", f"--pgdr-postgres={pgdr_install.spec}"]
    result = pytester.runpytest_subprocess(
        "--pgdr", "--pgdr-scenarios=none", *where, "-l", "--junitxml=out.xml", "-p", "no:xdist"
    )
    result.assert_outcomes(failed=1)
    output = "\n".join(result.outlines + result.errlines)
    xml = (pytester.path / "out.xml").read_text()
    assert "OperationalError" in output and "connect" in output  # it did fail in connect
    passwords = dump.read_text().split()
    assert len(passwords) == 2 and all(len(p) > 10 for p in passwords)
    for password in passwords:
        assert password not in output, "a password is in the terminal output"
        assert password not in xml, "a password is in the JUnit XML"
