"""Recovery targets that cannot work must fail fast and loudly, with PostgreSQL's own words.

Two targets at once, a restore point that never existed, a time after the end of the archive
and an LSN before the backup's consistency point each stop the server: the restore raises
:class:`RecoveryError` within seconds (never a hang until the wait's deadline), quotes the
server's FATAL, and leaves no promoted node with partial data. In standby mode an unreachable
target is not an error to PostgreSQL, it just waits: the harness says what it waited for.

The primary holds the team's database (``pgdr_data``), so the failures are those of a restore
of its size; the standby that waits streams it whole.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from pytest_pgdr import (
    Backup,
    Node,
    RecoveryError,
    RecoveryTarget,
    Topology,
    WaitTimeout,
    assert_same,
    fingerprint,
)
from pytest_pgdr.basics.wait import DEFAULT_TIMEOUT
from pytest_pgdr.drill.teamdata import TeamData

pytestmark = pytest.mark.pgdr

FAST = min(10.0, DEFAULT_TIMEOUT / 4)  # seconds: a failing recovery must end well before this
NEVER_PROMOTED = r"selected new timeline|archive recovery complete|ready to accept connections"


@dataclass(frozen=True)
class Setup:
    primary: Node
    backup: Backup
    before_backup: str  # an LSN written before the backup started


def setup_archive(pgdr: Topology, data: TeamData) -> Setup:
    primary = pgdr.primary()
    data.load(primary)
    primary.query("CREATE TABLE t (id int PRIMARY KEY)")
    primary.query("INSERT INTO t SELECT generate_series(1, 1000)")
    before = str(primary.lsn())
    backup = pgdr.backup(primary)
    primary.query("INSERT INTO t SELECT generate_series(1001, 2000)")
    primary.scalar("SELECT pg_create_restore_point('real_point')")
    pgdr.wait_archived(primary)
    return Setup(primary, backup, before)


def bad_target(case: str, s: Setup) -> tuple[RecoveryTarget, Mapping[str, object]]:
    if case == "two_targets":
        return RecoveryTarget.name("real_point"), {"recovery_target_lsn": s.before_backup}
    if case == "unknown_restore_point":
        return RecoveryTarget.name("never_created"), {}
    if case == "time_after_archive":
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        return RecoveryTarget.time(later), {}
    return RecoveryTarget.lsn(s.before_backup), {}


MESSAGES = {
    "two_targets": "multiple recovery targets specified",
    "unknown_restore_point": "recovery ended before configured recovery target was reached",
    "time_after_archive": "recovery ended before configured recovery target was reached",
    "lsn_before_consistency": "requested recovery stop point is before consistent recovery point",
}


@pytest.mark.parametrize("case", list(MESSAGES))
def test_bad_target_fails_fast_with_postgres_message(
    pgdr: Topology, pgdr_data: TeamData, case: str
) -> None:
    s = setup_archive(pgdr, pgdr_data)
    target, extra = bad_target(case, s)

    started = time.monotonic()
    with pytest.raises(RecoveryError) as failure:
        pgdr.restore(s.backup, target, name="bad", settings=extra)
    elapsed = time.monotonic() - started

    assert elapsed < FAST, f"{case}: failing took {elapsed:.1f} s, as if it waited for a deadline"
    assert MESSAGES[case] in str(failure.value), f"{case}: PostgreSQL's message is missing"
    node = pgdr.nodes["bad"]
    assert not node.is_running(), f"{case}: the server must be down after a failed recovery"
    assert not node.log.grep(NEVER_PROMOTED), f"{case}: a failed recovery must never promote"


def test_unreachable_target_in_standby_mode_times_out_saying_what(
    pgdr: Topology, pgdr_data: TeamData
) -> None:
    s = setup_archive(pgdr, pgdr_data)
    target = RecoveryTarget.name("never_created")
    standby = pgdr.replica(s.primary, backup=s.backup, name="waiting", settings=target.settings())

    started = time.monotonic()
    with pytest.raises(WaitTimeout) as failure:
        pgdr.wait_recovery(standby, target, timeout=1.0)
    elapsed = time.monotonic() - started

    assert 1.0 <= elapsed < 3.0
    assert "waiting for waiting to recover to name never_created" in str(failure.value)
    assert standby.is_running() and standby.in_recovery(), "it waits; it must not promote"
    pgdr.wait_caught_up(s.primary, standby)
    assert standby.scalar("SELECT count(*) FROM t") == 2000, "it streams everything meanwhile"
    db = pgdr_data.dbname
    assert_same(fingerprint(s.primary, db), fingerprint(standby, db), f"{db} on the standby")
