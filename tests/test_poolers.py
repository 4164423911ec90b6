"""The client-path family without servers: generated pooler configs (hostile names and
passwords quoted, nothing secret in reprs or errors), error classes, the registry."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.drill import clienterrors as ce
from pytest_pgdr.drill.ledger import Ack, Ledger
from pytest_pgdr.ha import pooler
from pytest_pgdr.ha.pgbouncer import aliases, connstr_value, render_ini, userlist_line
from pytest_pgdr.ha.pgpool import backend_settings, conf_value, pool_passwd_line, render_conf

HOSTILE_DB = 'we\'ird "db" ; # = x'
HOSTILE_PW = "p'a\"s s;#=\\w:rd"


def unquote_connstr(text: str) -> str:
    """pgbouncer's reading of a quoted connection-string value."""
    assert text.startswith("'") and text.endswith("'")
    return text[1:-1].replace("''", "'")


def test_pgbouncer_aliases_names_it_cannot_read() -> None:
    names = ["postgres", "app", "my-db.v2", HOSTILE_DB, "pgbouncer", "pgdr_db9", "ä"]
    keys = aliases(names)
    assert keys["postgres"] == "postgres" and keys["my-db.v2"] == "my-db.v2"
    assert keys[HOSTILE_DB].startswith("pgdr_db") and keys["ä"].startswith("pgdr_db")
    assert keys["pgbouncer"] != "pgbouncer" and keys["pgdr_db9"] != "pgdr_db9"
    assert len(set(keys.values())) == len(names)


def test_pgbouncer_ini_quotes_the_real_database_name() -> None:
    assert unquote_connstr(connstr_value(HOSTILE_DB)) == HOSTILE_DB
    ini = render_ini(["postgres", HOSTILE_DB], ("127.0.0.1", 5432), ("127.0.0.1", 6432), "/u", "su")
    line = next(x for x in ini.splitlines() if x.startswith("pgdr_db"))
    key, conn = line.split(" = ", 1)
    assert unquote_connstr(conn.split("dbname=", 1)[1]) == HOSTILE_DB
    assert "auth_type = scram-sha-256" in ini and "listen_addr = 127.0.0.1" in ini
    assert "admin_users = su" in ini and "unix_socket_dir = \n" in ini


def test_userlist_line_quotes_and_masks() -> None:
    line = userlist_line('us"er', HOSTILE_PW)
    assert str(line) == '"us""er" "' + HOSTILE_PW.replace('"', '""') + '"\n'
    assert HOSTILE_PW not in repr(line) and "p'a" not in repr(line)


@pytest.mark.parametrize("bad", ["line\nbreak", "nul\0byte", "cr\rx"])
def test_a_value_no_config_line_can_hold_is_refused_without_showing_it(bad: str) -> None:
    for render in (userlist_line, pool_passwd_line):
        with pytest.raises(ConfigError) as err:
            render("u", bad)
        assert bad not in str(err.value) and "line break or NUL" in str(err.value)


def test_pgpool_conf_values() -> None:
    assert conf_value(True) == "on" and conf_value(False) == "off" and conf_value(3) == "3"
    assert conf_value("it's a \\ path") == "'it''s a \\\\ path'"
    text = render_conf({"port": 1, "listen_addresses": "127.0.0.1"})
    assert "port = 1\n" in text and "listen_addresses = '127.0.0.1'\n" in text


def test_pgpool_reads_go_to_standbys_and_every_node_may_fail_over() -> None:
    out = backend_settings([("127.0.0.1", 5001, "primary"), ("127.0.0.1", 5002, "replica1")])
    assert out["backend_weight0"] == 0 and out["backend_weight1"] == 1
    assert out["backend_port1"] == 5002 and out["backend_application_name1"] == "replica1"
    assert {out["backend_flag0"], out["backend_flag1"]} == {"ALLOW_TO_FAILOVER"}
    assert backend_settings([("h", 1, "only")])["backend_weight0"] == 1


def test_pool_passwd_line() -> None:
    line = pool_passwd_line("postgres", HOSTILE_PW)
    assert str(line) == f"postgres:TEXT{HOSTILE_PW}\n" and HOSTILE_PW not in repr(line)
    with pytest.raises(ConfigError):
        pool_passwd_line("a:b", "pw")


def test_multihost_conninfo_names_every_node_read_write() -> None:
    from pytest_pgdr.ha.multihost import multihost_conninfo

    class FakeHost:
        client_address = "127.0.0.1"

    class FakeNode:
        def __init__(self, port: int) -> None:
            self.host, self.port = FakeHost(), port

    text = multihost_conninfo([FakeNode(1), FakeNode(2)], HOSTILE_DB, "su", "/p f")  # type: ignore[list-item]
    parsed = conninfo_to_dict(text)
    assert parsed["host"] == "127.0.0.1,127.0.0.1" and parsed["port"] == "1,2"
    assert parsed["dbname"] == HOSTILE_DB and parsed["passfile"] == "/p f"
    assert parsed["target_session_attrs"] == "read-write" and "password" not in parsed


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="direct, multihost, pgbouncer, pgpool"):
        pooler.check_kind("haproxy")


def test_a_missing_pooler_names_its_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(pooler, "SBIN", ())
    for kind, package in (("pgbouncer", "pgbouncer"), ("pgpool", "pgpool2")):
        with pytest.raises(pooler.PoolerUnavailable) as err:
            pooler.require_program(kind)
        assert f"apt-get install {package}" in str(err.value)


@pytest.mark.parametrize(
    ("message", "sqlstate", "kind"),
    [
        (
            'connection to server at "127.0.0.1", port 5 failed: Connection refused',
            None,
            ce.REFUSED,
        ),
        ("server closed the connection unexpectedly", None, ce.LOST),
        ("terminating connection due to administrator command", "57P01", ce.ADMIN_SHUTDOWN),
        ("the database system is starting up", "57P03", ce.NOT_READY),
        ("cannot execute INSERT in a read-only transaction", "25006", ce.READ_ONLY),
        ("canceling statement due to statement timeout", "57014", ce.TIMEOUT),
        ("connection timeout expired", None, ce.TIMEOUT),
        ("pgbouncer cannot connect to server", "08P01", ce.POOLER),
        ("ERROR: pgbouncer cannot connect to server", None, ce.POOLER),
        ("failed to create a backend connection\nDETAIL: executing failover", None, ce.POOLER),
        (
            "commit not acknowledged: canceling wait for synchronous replication",
            None,
            ce.UNACKNOWLEDGED,
        ),
        ("something new", None, ce.OTHER),
    ],
)
def test_error_classes(message: str, sqlstate: str | None, kind: str) -> None:
    assert ce.classify(message, sqlstate) == kind


def test_multihost_failure_is_classed_by_its_last_host() -> None:
    message = (
        "connection failed: connection to server at ... port 2 failed: session is read-only\n"
        "Multiple connection attempts failed. All failures were:\n"
        "- host: ... port 1 ...: Connection refused\n"
        "- host: ... port 2 ...: session is read-only"
    )
    assert ce.classify(message) == ce.NOT_PRIMARY


def test_the_outage_counts_failed_attempts_by_class() -> None:
    from datetime import UTC, datetime

    ledger = Ledger()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ledger.record_ack(Ack(1, 1.0, t0, 1, "primary", "0/1"))
    ledger.record_failure(0.5, None, "primary", "before the fault", ce.TIMEOUT)
    ledger.record_failure(1.2, 2, "primary", "server closed", ce.LOST)
    ledger.record_failure(1.3, None, "replica", "refused", ce.REFUSED)
    ledger.record_failure(1.4, None, "replica", "refused", ce.REFUSED)
    ledger.record_ack(Ack(3, 1.5, t0, 2, "replica", "0/2"))
    ledger.record_failure(1.6, None, "replica", "after recovery", ce.OTHER)
    outage = ledger.outage(1.1, 0.05, 2.0)
    assert outage.errors_by_class == {ce.LOST: 1, ce.REFUSED: 2}
    assert outage.as_dict()["errors_by_class"] == {ce.LOST: 1, ce.REFUSED: 2}
    assert ledger.errors_by_class() == {ce.TIMEOUT: 1, ce.LOST: 1, ce.REFUSED: 2, ce.OTHER: 1}
