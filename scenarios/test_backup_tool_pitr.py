"""The PITR matrix through each backup tool (guide "Third-Party Tools", "Recovery targets").

One backup taken with the tool, rows 1..6000 written with a target noted between batches, then
the tool's own restore command to each target: immediate, xid (inclusive and exclusive), time,
restore point and LSN give exactly the rows 1..N; the server's log names where it stopped; each
restored node is promoted and writable, and holds the team's whole database exactly as it was
at the backup. Restore phases go into the RTO.
"""

from __future__ import annotations

import pytest

from pytest_pgdr import Measurement, Topology
from pytest_pgdr.backup import BackupTool
from pytest_pgdr.drill.teamdata import TeamData

from .backup_tool_common import (
    INSPECT,
    assert_team_intact,
    build_history,
    ids,
    insert_rows,
    targets,
)

pytestmark = pytest.mark.pgdr


def test_each_target_restores_exactly_its_rows(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    primary, h = build_history(pgdr, tool, pgdr_data)
    assert ids(primary) == (6000, 1, 6000)
    cases = targets(h)

    rto = pgdr_measure.declare_disaster()
    nodes = {}
    for key, (target, _) in cases.items():
        nodes[key] = tool.restore(h.backup, target, name=f"to_{key}", settings=INSPECT, wait=False)
    rto.lap(f"{tool.name}: restore files for {len(nodes)} targets")
    for key, node in nodes.items():
        pgdr.wait_recovery(node, cases[key][0])
    rto.lap("replay to each target, promote")
    found = {key: ids(node) for key, node in nodes.items()}
    for key, node in nodes.items():
        assert_team_intact(h.team, node, pgdr_data, f"{tool.name} to {key}")
    rto.stop("verify")

    expected = {key: (rows, 1, rows) for key, (_, rows) in cases.items()}
    assert found == expected, f"{tool.name}: each target must give exactly ids 1..N"
    for key, node in nodes.items():
        assert node.log.grep("recovery stopping"), f"{key}: the server names its stop point"
        assert node.timeline() == 2, f"{key}: promotion must start timeline 2"
        insert_rows(node, 100_001, 100_001)  # promoted: writable
    pgdr_measure.record("targets_restored", len(nodes))


def test_restore_to_the_end_replays_everything_and_times_each_phase(
    pgdr: Topology, pgdr_backup_tool: BackupTool, pgdr_data: TeamData, pgdr_measure: Measurement
) -> None:
    tool = pgdr_backup_tool
    primary, h = build_history(pgdr, tool, pgdr_data)
    rto = pgdr_measure.declare_disaster()
    node = tool.restore(h.backup, name="latest", settings=INSPECT, stopwatch=rto)
    assert ids(node) == (6000, 1, 6000)
    assert_team_intact(h.team, node, pgdr_data, f"{tool.name} to the end")
    rto.stop("verify")

    phases = rto.phases()
    for phase in ("fetch", "restore files", "replay WAL", "verify"):
        assert phases.get(phase, 0) > 0, f"{tool.name}: phase {phase!r} missing from {phases}"
    pgdr_measure.record_throughput(h.backup.size, phase="restore files")
    assert not node.in_recovery()
