"""Differential and incremental chains through each tool restore the same data as the full
backup alone (PostgreSQL's pg_combinebackup tests, pgBackRest's diff/incr sets).

A full backup, then rows and a differential, then rows and an incremental: restoring the
newest backup of the chain and the full backup alone to the same LSN gives equal fingerprints,
both equal to the primary's at that LSN, the team's database (changed between the backups)
included. A tool that takes full backups only is skipped.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, RecoveryTarget, Topology, assert_same, fingerprint
from pytest_pgdr.backup import BackupTool
from pytest_pgdr.drill.teamdata import TeamData, app_write, ledger_table

from .backup_tool_common import INSPECT, TABLE, ids, insert_rows, tool_primary

pytestmark = pytest.mark.pgdr


def test_chain_restores_what_the_full_backup_restores(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    db = pgdr_data.dbname
    later = [kind for kind in tool.kinds if kind != "full"]
    if not later:
        pytest.skip(f"{tool.name} {tool.version()} takes full backups only (kinds: full)")
    primary = tool_primary(pgdr, tool, pgdr_data)
    ledger_table(primary, db)
    primary.query(TABLE)
    insert_rows(primary, 1, 1000)
    full = tool.backup(primary, "full")
    chain = [full]
    for number, kind in enumerate(later, start=1):
        insert_rows(primary, number * 1000 + 1, number * 1000 + 1000)
        primary.query("UPDATE pitr_rows SET note = note || '+' WHERE id %% 7 = %s", [number])
        app_write(primary, db, 3)  # the team's database changes between backups too
        chain.append(tool.backup(primary, kind))
        assert chain[-1].kind == kind and chain[-1].prior is not None, chain[-1]
    rows = (len(later) + 1) * 1000
    insert_rows(primary, rows + 1, rows + 500)
    lsn = primary.scalar("SELECT pg_current_wal_lsn()::text")
    expected = fingerprint(primary)
    team = fingerprint(primary, db)
    insert_rows(primary, rows + 501, rows + 600)  # after the target: must not come back
    tool.wait_archived(primary)

    target = RecoveryTarget.lsn(lsn)
    rto = pgdr_measure.declare_disaster()
    from_chain = tool.restore(chain[-1], target, name="from_chain", settings=INSPECT, stopwatch=rto)
    rto.stop("verify")
    from_full = tool.restore(full, target, name="from_full", settings=INSPECT)

    assert ids(from_chain) == (rows + 500, 1, rows + 500)
    assert_same(expected, fingerprint(from_chain), f"{tool.name} {chain[-1].kind} chain")
    assert_same(fingerprint(from_full), fingerprint(from_chain), "full alone vs the chain")
    for node, what in ((from_chain, f"the {chain[-1].kind} chain"), (from_full, "the full alone")):
        # a sequence's WAL record runs ahead of its value: after replay it is at least as far
        assert_same(team, fingerprint(node, db), f"{db} from {what}", sequences="at_least")
    sizes = {b.kind: b.size for b in chain}
    pgdr_measure.record("chain", [f"{b.kind}:{b.id}" for b in chain])
    assert all(size > 0 for size in sizes.values()), sizes
