"""The backup-source family without servers: option parsing, specs and targets, the dump
header reader, declared checks, the installation a backup needs, and the skip without a
source (unit tests may fake; the real restores are in test_sources_integration.py)."""

from __future__ import annotations

import datetime as dt
import io
import struct
from pathlib import Path

import pytest

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.parsers import parse_sources
from pytest_pgdr.hosts.install import Installation
from pytest_pgdr.sources import SourceError, SourceSpec, backup_age, load_checks, parse_spec
from pytest_pgdr.sources.dump import dump_format, read_archive_header, roles_in_lines
from pytest_pgdr.sources.registry import open_source, target_of
from pytest_pgdr.sources.sandbox import check_wal_chain
from pytest_pgdr.sources.versions import choose_installation


def test_sources_are_named_one_a_line() -> None:
    text = "nightly = dump:/backups/app.dump\nmain=basebackup:/b/base?wal=/b/wal&target=name:x"
    assert parse_sources("--pgdr-source", text) == (
        ("nightly", "dump", "/backups/app.dump"),
        ("main", "basebackup", "/b/base?wal=/b/wal&target=name:x"),
    )
    assert parse_sources("--pgdr-source", "none") == ()


@pytest.mark.parametrize(
    "bad", ["nightly:/x", "n = tape:/x", "n = dump:/a\nn = dump:/b", "1x = dump:/x"]
)
def test_a_bad_source_names_the_valid_form(bad: str) -> None:
    with pytest.raises(ConfigError, match="kind:path|named twice"):
        parse_sources("--pgdr-source", bad)


def test_spec_options_and_recovery_targets() -> None:
    spec = parse_spec("main", "basebackup", "/b/base?wal=/b/wal&target=name:before_release")
    assert spec.path == "/b/base" and spec.option("wal") == "/b/wal"
    target = target_of(spec)
    assert (target.kind, target.value, target.action) == ("name", "before_release", "promote")
    assert target_of(parse_spec("x", "dump", "/d")).kind == "latest"
    with pytest.raises(ConfigError, match="(?i)valid kinds"):
        target_of(parse_spec("x", "basebackup", "/b?target=yesterday"))
    with pytest.raises(ConfigError, match="unknown option"):
        open_source(parse_spec("x", "basebackup", "/b?wall=/w"))


def _header(dbname: str, server: str, pg_dump: str) -> bytes:
    def num(value: int) -> bytes:
        return b"\x00" + struct.pack("<i", value)

    def text(value: str) -> bytes:
        return num(len(value)) + value.encode()

    stamp = b"".join(num(v) for v in (5, 4, 3, 2, 0, 126, 0))
    return (
        b"PGDMP"
        + bytes([1, 16, 0, 4, 8, 1])
        + b"\x00"
        + stamp
        + text(dbname)
        + (text(server) + text(pg_dump))
    )


def test_the_dump_header_is_read_like_pg_restore_reads_it() -> None:
    head = read_archive_header(io.BytesIO(_header("app", "15.18 (Debian)", "15.18")))
    assert head["dbname"] == "app" and head["server_version"].startswith("15.18")
    assert head["created"] == "2026-01-02T03:04:05" and head["archive_version"] == "1.16.0"


def test_formats_come_from_the_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("-- PostgreSQL database dump\n")
    (tmp_path / "a.dump").write_bytes(_header("app", "15.1", "15.1"))
    assert dump_format(tmp_path / "a.sql") == "plain"
    assert dump_format(tmp_path / "a.dump") == "custom"
    assert dump_format(tmp_path) == "directory"


def test_roles_a_dump_hands_objects_to() -> None:
    lines = [
        "ALTER TABLE public.orders OWNER TO app_owner;",
        "GRANT SELECT ON TABLE public.orders TO readers, PUBLIC;",
        "COPY public.t (x) FROM stdin;",
        "OWNER TO not_a_role;",
        "\\.",
        'ALTER DEFAULT PRIVILEGES FOR ROLE "Admin" GRANT SELECT ON TABLES TO readers;',
    ]
    assert roles_in_lines(lines) == {"app_owner", "readers", "Admin"}


def test_checks_file_merges_the_source_section(tmp_path: Path) -> None:
    path = tmp_path / "checks.toml"
    path.write_text(
        'tables = ["orders"]\nmax_backup_age = "26h"\n[min_rows]\norders = 10\n'
        '[max_age]\n"orders.placed_at" = "1h"\n[source.nightly]\ndatabase = "shop"\n'
        "[source.nightly.min_rows]\ncustomers = 5\n"
    )
    checks = load_checks(path, "nightly")
    assert checks.database == "shop" and checks.tables == ("orders",)
    assert checks.min_rows == {"orders": 10, "customers": 5}
    assert checks.max_age == {"orders.placed_at": 3600.0}
    assert load_checks(path, "other").database == ""
    path.write_text("tabels = []\n")
    with pytest.raises(ConfigError, match="(?i)valid keys"):
        load_checks(path, "nightly")


def test_backup_age_against_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('max_backup_age = "26h"\n')
    checks = load_checks(path, "x")
    now = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)
    fresh = backup_age(checks, "2026-01-02T12:00:00+00:00", now)
    stale = backup_age(checks, "2025-12-30T00:00:00+00:00", now)
    assert fresh is not None and fresh.ok
    assert stale is not None and not stale.ok and "stale" in stale.detail


def _inst(major: int) -> Installation:
    return Installation(Path(f"/pg{major}/bin"), f"{major}.1", "system", str(major))


def test_a_dump_loads_into_its_major_or_newer_a_physical_backup_only_its_own() -> None:
    spec = SourceSpec("nightly", "dump", "/d")
    have = [("embedded", _inst(18)), ("16", _inst(16))]
    assert choose_installation(spec, 15, False, have, False)[0] == "16"
    assert choose_installation(spec, 18, True, have, False)[0] == "embedded"
    with pytest.raises(SourceError, match="needs PostgreSQL 15, which this run does not") as exc:
        choose_installation(spec, 15, True, have, False)
    assert "apt-get install postgresql-15" in str(exc.value)
    with pytest.raises(SourceError, match="pytest-pgdr/pg14"):
        choose_installation(spec, 14, True, have, True)


def test_a_gap_in_the_archive_names_the_segment_and_the_backup() -> None:
    spec = SourceSpec("main", "basebackup", "/b")
    names = ["000000010000000000000003", "000000010000000000000004", "000000010000000000000006"]
    with pytest.raises(SourceError, match="segment 000000010000000000000005 is missing") as exc:
        check_wal_chain(spec, "nightly base", names, "000000010000000000000003")
    assert "Backup nightly base starts at segment 000000010000000000000003" in str(exc.value)
    check_wal_chain(spec, "b", names[:2], "000000010000000000000003")  # no gap: fine


def test_walg_without_its_binary_is_unavailable_not_a_crash() -> None:
    from pytest_pgdr.sources import SourceUnavailable

    with pytest.raises(SourceUnavailable, match="wal-g"):
        open_source(parse_spec("store", "walg", "/backups/walg"), {"walg": None})


def test_without_a_source_the_drill_says_how_to_name_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_n(pgdr_source): pass\n")
    result = pytester.runpytest("--pgdr", "--pgdr-scenarios=none", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no backup source given*--pgdr-source NAME=KIND:PATH*"])


def test_a_missing_tool_is_unavailable_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_pgdr.sources import SourceUnavailable

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SourceUnavailable, match="apt-get install pgbackrest"):
        open_source(parse_spec("repo", "pgbackrest", "/var/lib/pgbackrest?stanza=main"))
    with pytest.raises(SourceUnavailable, match="apt-get install barman"):
        open_source(parse_spec("b", "barman", "/etc/barman.conf"))


def test_a_base_backup_names_its_major_from_pg_version(tmp_path: Path) -> None:
    (tmp_path / "PG_VERSION").write_text("15\n")
    (tmp_path / "backup_label").write_text(
        "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
        "START TIME: 2026-01-02 03:04:05 UTC\nLABEL: nightly\nSTART TIMELINE: 1\n"
    )
    source = open_source(parse_spec("b", "basebackup", str(tmp_path)))
    assert source.major() == 15 and source.exact_major and not source.pitr
    identity = source.identity()
    assert (identity.label, identity.start_lsn) == ("nightly", "0/2000028")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="has no PG_VERSION"):
        open_source(parse_spec("e", "basebackup", str(empty))).major()
