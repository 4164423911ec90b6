"""Tests for cluster.serverlog: the lines an error shows keep PostgreSQL's explanations."""

from __future__ import annotations

from pathlib import Path

from pytest_pgdr.cluster.serverlog import ServerLog

PREFIX = "2026-11-22 00:00:00.000 UTC"


def log_of(tmp_path: Path, *lines: str) -> ServerLog:
    path = tmp_path / "server.log"
    path.write_text("".join(f"{PREFIX} {line}\n" for line in lines))
    return ServerLog(path)


def test_detail_and_hint_stay_with_their_error(tmp_path: Path) -> None:
    log = log_of(
        tmp_path,
        "[1] LOG:  checkpoint starting",
        '[2] ERROR:  relation "employees" does not exist',
        "[2] HINT:  Perhaps you meant to reference the table x.",
        "[2] STATEMENT:  SELECT * FROM employees",
        "[3] LOG:  checkpoint complete",
        "[3] DETAIL:  wrote 3 buffers",
    )
    assert [line.split("] ", 1)[1] for line in log.important()] == [
        'ERROR:  relation "employees" does not exist',
        "HINT:  Perhaps you meant to reference the table x.",
        "STATEMENT:  SELECT * FROM employees",
    ]


def test_a_config_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    log = log_of(
        tmp_path,
        '[1] LOG:  syntax error in file "/d/pgdr.conf" line 7, near token "x"',
        '[1] FATAL:  configuration file "/d/postgresql.conf" contains errors',
    )
    assert len(log.important()) == 2
    assert "line 7" in log.important()[0]


def test_the_last_lines_do_not_start_inside_a_message(tmp_path: Path) -> None:
    log = log_of(
        tmp_path,
        "[1] FATAL:  one",
        "[1] DETAIL:  one explained",
        "[1] HINT:  one fixed",
    )
    assert [line.split("] ", 1)[1] for line in log.important(count=2)] == [
        "FATAL:  one",
        "DETAIL:  one explained",
        "HINT:  one fixed",
    ]
