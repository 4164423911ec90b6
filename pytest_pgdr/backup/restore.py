"""The restore every tool shares: a node, the tool's files, start, recovery to the target.

The tool lays the data directory down with its own restore command (recovery settings and
restore_command included); what follows is the topology's: start the server and watch it
reach the target, failing fast with PostgreSQL's own messages. A restore "to the end of the
archive" is also checked to have replayed every segment the tool holds, since a gap in the
repository otherwise ends recovery early, silently, with partial data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pytest_pgdr.backup.base import BackupToolError, RepoInfo, ToolBackup
from pytest_pgdr.basics.errors import RecoveryError
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.cluster.lsn import LONG_PAGE_HEADER, Lsn
from pytest_pgdr.cluster.recovery import RecoveryTarget

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology

STALE = ("postmaster.pid", "postmaster.opts", "standby.signal")
LaysFiles = Callable[[ToolBackup | None, RecoveryTarget, "Node", bool], None]


def blank_node(topology: Topology, name: str | None) -> Node:
    """A new node of ``topology`` with an empty data directory (0700, server user)."""
    node = topology.new_node("restore", name)
    topology.host.make_dir(node.datadir)
    return node


def choose(info: RepoInfo, backup: ToolBackup | None) -> ToolBackup:
    """``backup``, or the newest one the tool reports."""
    if backup is not None:
        return backup
    newest = info.newest()
    if newest is None:
        raise BackupToolError(
            f"{info.tool} has no backup to restore",
            "its repository lists none",
            "Take a backup first (tool.backup(node))",
        )
    return newest


def restore_through(
    tool_name: str,
    topology: Topology,
    info: Callable[[], RepoInfo],
    lay_files: LaysFiles,
    wal_settings: Callable[[Node], dict[str, object]],
    backup: ToolBackup | None = None,
    target: RecoveryTarget | None = None,
    name: str | None = None,
    settings: Mapping[str, object] | None = None,
    stopwatch: Stopwatch | None = None,
    delta: Node | None = None,
    wait: bool = True,
    sources: Mapping[str, str] | None = None,
    segments: Callable[[], list[str]] | None = None,
) -> Node:
    """Restore through a tool; laps ``fetch``, ``restore files``, ``replay WAL``, ``promote``.

    ``sources`` maps backup ids to the node each was taken from: the new node carries that
    node's settings, as a copy of its data directory would (max_connections and the like).
    ``segments`` lists the WAL the tool holds more cheaply than its whole info, where it can
    (read from its catalogue without running the tool)."""
    target = target or RecoveryTarget.latest()
    # the tool's info is asked only when needed: to pick the newest backup, or for the WAL
    # list a restore to the end is checked against
    wal: list[str] | None = None
    if backup is None:
        repo = info()
        chosen, wal = choose(repo, None), list(repo.wal)
    else:
        chosen = backup
    if target.kind == "latest" and wal is None:
        wal = segments() if segments is not None else list(info().wal)
    if stopwatch is not None:
        stopwatch.lap("fetch")
    node = _target_node(tool_name, topology, name, delta)
    if delta is None:
        node.conf.update(topology.inherited(topology.nodes.get((sources or {}).get(chosen.id, ""))))
    lay_files(chosen, target, node, delta is not None)
    for stale in STALE:
        (node.datadir / stale).unlink(missing_ok=True)
    if stopwatch is not None:
        stopwatch.lap("restore files")
    node.conf.update(wal_settings(node))
    node.conf.update(settings or {})
    offset = node.log.offset()
    node.start(wait=False)
    if wait:
        topology.wait_recovery(node, target, offset, stopwatch)
        if wal is not None and target.kind == "latest":
            topology.check_archive_replayed(node, wal, offset)
    return node


def _target_node(tool_name: str, topology: Topology, name: str | None, delta: Node | None) -> Node:
    if delta is None:
        return blank_node(topology, name)
    if delta.is_running():
        raise RecoveryError(
            f"A {tool_name} delta restore into {delta.name} needs the server stopped",
            "a tool must never overwrite the files of a running server",
            f"Call {delta.name}.stop() first",
        )
    return delta


def wait_archived(node: Node, timeout: float | None = None) -> str:
    """Switch WAL and wait until the server's archive_command succeeded for every segment
    written so far (the tool then holds it). Returns the last segment's name."""
    segment = last_written_segment(node)
    if node.walfile_name(node.lsn("write")) <= segment:
        node.switch_wal()

    def archived() -> bool:
        last = node.scalar("SELECT last_archived_wal FROM pg_stat_archiver")
        return bool(last) and str(last)[:24] >= segment

    poll(
        archived,
        f"{node.name} to archive WAL segment {segment} through its archive_command",
        timeout,
        lambda: node.log.tail(20),
    )
    return segment


def last_written_segment(node: Node) -> str:
    """The segment holding the last WAL byte written. Right after a switch the insert
    position sits just past the next segment's page header, where nothing is written yet
    (and which no switch would close): the segment before it is the last one."""
    lsn = node.lsn("insert")
    into = lsn.value % node.wal_segment_size()
    if 0 < into <= LONG_PAGE_HEADER or into == 0:
        lsn = Lsn(lsn.value - into - 1)
    return node.walfile_name(lsn)
