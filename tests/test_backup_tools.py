"""Backup-tool family without servers: WAL arithmetic, health, registry, option mapping,
parsing of each tool's own output, and error paragraphs."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_pgdr import ConfigError, RecoveryTarget
from pytest_pgdr.backup import (
    TOOL_NAMES,
    BackupToolError,
    Health,
    RepoInfo,
    ToolBackup,
    ToolUnavailable,
    backup_tool,
    barman,
    barman_cli,
    pgbackrest,
    registry,
    resolve,
)
from pytest_pgdr.backup.base import Runner, segments_in, wal_gaps
from pytest_pgdr.hosts.base import LOCAL_FILES

if TYPE_CHECKING:
    from pytest_pgdr.backup import BackupTool
    from pytest_pgdr.cluster.topology import Topology


def seg(tli: int, log: int, num: int) -> str:
    return f"{tli:08X}{log:08X}{num:08X}"


def backup(bid: str, stopped: float, start_wal: str = "", kind: str = "full") -> ToolBackup:
    return ToolBackup(bid, kind, "t", started=stopped - 1, stopped=stopped, start_wal=start_wal)


# WAL arithmetic -------------------------------------------------------------------------
def test_wal_gaps_per_timeline_and_across_log_files() -> None:
    names = [seg(1, 0, n) for n in (1, 2, 5)] + [seg(1, 0, 0xFF), seg(1, 1, 0)]
    names += [seg(2, 1, 0), seg(2, 1, 2)]
    assert wal_gaps(names) == [
        (seg(1, 0, 3), seg(1, 0, 4)),
        (seg(1, 0, 6), seg(1, 0, 0xFE)),
        (seg(2, 1, 1), seg(2, 1, 1)),
    ]
    assert wal_gaps([seg(1, 0, 0xFF), seg(1, 1, 0)]) == [], "0xFF then the next log: no gap"


def test_segments_in_drops_suffixes_and_other_files() -> None:
    names = [
        f"{seg(1, 0, 3)}-3d5063431673a6acffcf7e50b962cf9bf9844e0a.lz4",
        seg(1, 0, 2),
        f"{seg(1, 0, 2)}.00000028.backup",
        "00000002.history",
        "xlog.db",
    ]
    assert segments_in(names) == (seg(1, 0, 2), seg(1, 0, 3))


def test_repo_info_newest_age_and_gaps_after_a_backup() -> None:
    wal = (seg(1, 0, 1), seg(1, 0, 3), seg(1, 0, 4), seg(1, 0, 6))
    info = RepoInfo("t", (backup("a", 100, seg(1, 0, 1)), backup("b", 200, seg(1, 0, 3))), wal)
    assert info.newest() is not None and info.newest().id == "b"  # type: ignore[union-attr]
    assert info.newest_age(now=260) == 60
    assert info.gaps_after(info.backups[1]) == [(seg(1, 0, 5), seg(1, 0, 5))]
    assert RepoInfo("t", (), ()).newest_age() is None


# health -----------------------------------------------------------------------------------
def test_health_names_every_problem_in_one_paragraph() -> None:
    wal = (seg(1, 0, 1), seg(1, 0, 3))
    info = RepoInfo("pgbackrest", (backup("a", 1000, seg(1, 0, 1)),), wal)
    health = Health.of(info, now=1000 + 7200)
    assert health.figures()["newest backup age"] == (7200, "s")
    assert health.figures()["WAL gaps"] == (1.0, "count")
    with pytest.raises(BackupToolError) as caught:
        health.check(max_backup_age_s=3600)
    text = str(caught.value)
    assert text.startswith("The pgbackrest repository is not fit for a restore: the newest")
    assert "over the budget of 3600 s" in text
    assert f"WAL {seg(1, 0, 2)} is missing" in text
    fresh = Health.of(info, now=1010).problems(3600)
    assert fresh == [f"WAL {seg(1, 0, 2)} is missing: a restore cannot replay past it"]


def test_health_without_backups() -> None:
    health = Health.of(RepoInfo("barman", (), ()))
    assert health.problems(60) == ["the repository holds no backup"]
    assert "newest backup age" not in health.figures()


# registry ---------------------------------------------------------------------------------
def test_registry_resolves_names_and_refuses_unknown_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(registry.WALG_ENV, raising=False)
    assert resolve("all") == TOOL_NAMES
    assert resolve("plain, pgbackrest,plain") == ("plain", "pgbackrest")
    assert "plain" in resolve("installed") and "walg" not in resolve("installed")
    with pytest.raises(
        ConfigError, match="Unknown backup tool 'bacula'. Valid tools: plain, pgbackrest"
    ):
        resolve("plain,bacula")


def test_walg_absent_is_a_skip_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(registry.WALG_ENV, raising=False)
    with pytest.raises(ToolUnavailable, match="--pgdr-walg=/path/to/wal-g") as caught:
        backup_tool(
            "walg",
            cast("Topology", SimpleNamespace(host=SimpleNamespace(capabilities={LOCAL_FILES}))),
        )
    assert "PGDR_WALG" in str(caught.value)
    not_executable = tmp_path / "wal-g"
    not_executable.write_text("#!/bin/sh\n")
    monkeypatch.setenv(registry.WALG_ENV, str(not_executable))
    assert not registry.is_installed("walg")
    not_executable.chmod(0o755)
    assert registry.is_installed("walg") and registry.walg_binary() == str(not_executable)


# each tool's options and output -----------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "options"),
    [
        (RecoveryTarget.latest(), ["--target-timeline=latest", "--type=default"]),
        (RecoveryTarget.immediate(), ["--type=immediate", "--target-action=promote"]),
        (
            RecoveryTarget.xid(734, inclusive=False, action="pause"),
            [
                "--type=xid",
                "--target-action=pause",
                "--target-timeline=latest",
                "--target=734",
                "--target-exclusive",
            ],
        ),
        (
            RecoveryTarget.name("before"),
            [
                "--type=name",
                "--target-action=promote",
                "--target-timeline=latest",
                "--target=before",
            ],
        ),
    ],
)
def test_pgbackrest_restore_options(target: RecoveryTarget, options: list[str]) -> None:
    assert pgbackrest.target_options(target) == options


@pytest.mark.parametrize(
    ("target", "options"),
    [
        (RecoveryTarget.latest(), ["--target-tli", "latest"]),
        (
            RecoveryTarget.immediate(action="shutdown"),
            ["--target-immediate", "--target-tli", "latest", "--target-action", "shutdown"],
        ),
        (
            RecoveryTarget.lsn("0/3000100", inclusive=False),
            [
                "--target-lsn",
                "0/3000100",
                "--exclusive",
                "--target-tli",
                "latest",
                "--target-action",
                "promote",
            ],
        ),
        (
            RecoveryTarget("time", "2026-11-22T00:30:00+00:00", timeline="2"),
            [
                "--target-time",
                "2026-11-22T00:30:00+00:00",
                "--target-tli",
                "2",
                "--target-action",
                "promote",
            ],
        ),
    ],
)
def test_barman_recover_options(target: RecoveryTarget, options: list[str]) -> None:
    assert barman_cli.target_options(target) == options


def test_pgbackrest_verify_output_with_a_broken_wal_range() -> None:
    lines = [
        "P00 DETAIL: archiveId: 15-1, wal start: 000000010000000000000001,"
        " wal stop: 000000010000000000000004",
        "P00 DETAIL: archiveId: 15-1, wal start: 000000010000000000000006,"
        " wal stop: 000000010000000000000006",
        "P00 DETAIL: archiveId: 15-1, wal start: 000000020000000000000006,"
        " wal stop: 000000020000000000000007",
    ]
    broken = pgbackrest.wal_breaks(lines)
    assert len(broken) == 1
    assert broken[0].startswith(
        "WAL missing between 000000010000000000000004 and 000000010000000000000006"
    )
    assert pgbackrest.wal_breaks(lines[:1] + lines[2:]) == []


def test_pgbackrest_info_json_parses() -> None:
    raw: dict[str, Any] = {
        "archive": {"start": seg(1, 0, 3), "stop": seg(1, 0, 3)},
        "info": {"size": 23095484, "repository": {"size": 4552626}},
        "label": "20261122-003017F_20261122-003100I",
        "lsn": {"start": "0/3000028", "stop": "0/3000100"},
        "prior": "20261122-003017F",
        "timestamp": {"start": 1795307417, "stop": 1795307420},
        "type": "incr",
    }
    parsed = pgbackrest.parse_backup(raw)
    assert (parsed.kind, parsed.prior, parsed.start_wal, parsed.size) == (
        "incr",
        "20261122-003017F",
        seg(1, 0, 3),
        23095484,
    )
    assert parsed.stopped - parsed.started == 3


def test_barman_backup_id_and_show_backup_parse() -> None:
    out = "Starting backup using postgres method for server pgdr in /x/pgdr/base/20261122T003148\n"
    match = barman_cli.BACKUP_DIR.search(out)
    assert match is not None and match.group(1) == "20261122T003148"
    show = {
        "status": "DONE",
        "base_backup_information": {
            "begin_lsn": "0/2000028",
            "begin_wal": seg(1, 0, 2),
            "begin_time_timestamp": "1795307508",
            "end_time_timestamp": "1795307510",
            "disk_usage_bytes": 23126996,
        },
    }
    parsed = barman_cli.parse_backup("20261122T003148", {"retention_status": "VALID"}, show)
    assert (parsed.status, parsed.start_wal, parsed.size, parsed.stopped) == (
        "DONE",
        seg(1, 0, 2),
        23126996,
        1795307510.0,
    )


# errors -----------------------------------------------------------------------------------
class FakeHost:
    """Runs nothing; answers with a canned result (or a timeout)."""

    def __init__(self, result: subprocess.CompletedProcess[str] | None) -> None:
        self.result = result

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        if self.result is None:
            raise subprocess.TimeoutExpired(list(argv), timeout or 0)
        return self.result


def test_tool_failure_is_one_paragraph_with_the_tools_own_lines() -> None:
    failed = subprocess.CompletedProcess(
        ["pgbackrest"], 56, "", "WARN: unable to check pg1\nERROR: [056]: unable to find primary\n"
    )
    run = Runner("pgBackRest", cast(Any, FakeHost(failed)), {})
    with pytest.raises(BackupToolError) as caught:
        run(["pgbackrest", "--stanza=pgdr", "check"], "check")
    text = str(caught.value)
    assert text.startswith("pgBackRest failed check (exit code 56). pgBackRest says: ERROR: [056]")
    assert "command: pgbackrest --stanza=pgdr check" in text
    assert "    ERROR: [056]: unable to find primary" in text


def test_tool_timeout_names_the_command() -> None:
    run = Runner("Barman", cast(Any, FakeHost(None)), {})
    with pytest.raises(BackupToolError, match=r"Barman did not finish recover within 5 s"):
        run(["barman", "recover"], "recover", timeout=5)


def every_member(topology: Topology) -> list[BackupTool]:
    """Never called: mypy checks here that each member meets the BackupTool protocol."""
    from pytest_pgdr.backup.plain import Plain
    from pytest_pgdr.backup.walg import WalG

    return [
        Plain(topology),
        pgbackrest.PgBackRest(topology),
        barman.Barman(topology),
        WalG(topology),
    ]
