"""Cascading standbys across a promotion (PostgreSQL src/test/recovery 025_stuck_on_old_timeline,
055_cascade_reconnect and 004_timeline_switch).

Standby ``B`` streams from standby ``A``, which streams from the primary. The primary dies;
``A`` is promoted. ``B`` is never touched: with ``recovery_target_timeline = 'latest'`` its WAL
receiver follows ``A`` onto timeline 2 by itself. Checked: ``B`` reaches timeline 2, holds the
team's whole database (fingerprint equal to ``A``'s) and exactly the marker rows written
before the disaster (on timeline 1) and after it (on ``A``, timeline 2).
"""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, Topology, assert_same, fingerprint
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_rows, ledger_table

pytestmark = pytest.mark.pgdr

BEFORE, AFTER = 40, 25  # marker commits on timeline 1, then on timeline 2


def test_standby_of_a_standby_follows_the_promotion(
    pgdr: Topology, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    db = pgdr_data.dbname
    primary = pgdr.primary()
    pgdr_data.load(primary)
    ledger = ledger_table(primary, db)
    a = pgdr.replica(primary, name="standby_a")
    b = pgdr.replica(a, name="standby_b")  # cascading: B's upstream is A
    before = app_write(primary, db, BEFORE)
    pgdr.wait_caught_up(a, b, pgdr.wait_caught_up(primary, a))
    assert b.scalar("SELECT sender_host IS NOT NULL FROM pg_stat_wal_receiver")
    assert a.scalar("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby_b'")
    expected = fingerprint(primary, db)

    primary.crash()
    rto = pgdr_measure.declare_disaster()
    pgdr.promote(a)
    rto.lap("promote A")
    after = app_write(a, db, AFTER)
    rto.lap("first writes on A")
    pgdr.wait_caught_up(a, b)
    rto.lap("B follows timeline 2")
    got_a, got_b = fingerprint(a, db), fingerprint(b, db)
    rto.stop("verify")

    assert a.timeline() == 2 and b.timeline() == 2, "B must follow A onto timeline 2"
    assert b.in_recovery(), "B stays a standby"
    # a standby shows a sequence's WAL-logged value, up to 32 ahead of the primary's
    assert_same(got_a, got_b, "the cascading standby after A's promotion", sequences="at_least")
    assert ledger_rows(b, ledger, db) == BEFORE + AFTER
    assert (
        b.scalar(f"SELECT count(*) FROM {ledger} WHERE id = ANY(%s)", [before + after], dbname=db)
        == BEFORE + AFTER
    ), "every acknowledged marker is on B"
    a.query(f"DELETE FROM {ledger} WHERE id = ANY(%s)", [after], dbname=db)
    pgdr.wait_caught_up(a, b)
    assert_same(
        expected, fingerprint(b, db), "B without the timeline-2 markers", sequences="at_least"
    )
    pgdr.wait_history_archived(2)
    pgdr_measure.record("cascade", "primary -> standby_a -> standby_b")
