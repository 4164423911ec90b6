"""The nightly restore of one source, without pytest: open it, pick the installation its
backup needs, stage it when the host cannot see it, restore, and record the evidence."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pytest_pgdr.hosts.base import require_local_files
from pytest_pgdr.hosts.install import Installation, find_installation
from pytest_pgdr.sources.base import BackupSource, Restored, SourceSpec
from pytest_pgdr.sources.checks import _parse_time
from pytest_pgdr.sources.registry import open_source, target_of
from pytest_pgdr.sources.stage import host_sees, stage
from pytest_pgdr.sources.versions import choose_installation

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.topology import Topology

RESTORE_PHASES = ("restore dump", "restore files", "replay WAL")


class Records(Protocol):
    """Where evidence goes (``pytest_pgdr.drill.measure.Measurement`` fits)."""

    context: dict[str, Any]

    def record(self, name: str, value: Any) -> None: ...

    def figure(self, name: str, value: float, unit: str) -> None: ...


@dataclass(frozen=True)
class NightlySource:
    """One source on one backend: what the nightly drill is parametrized over."""

    spec: SourceSpec
    backend: str = "local"


def restore_nightly(
    nightly: NightlySource,
    candidates: Sequence[tuple[str, Installation]],
    make_topology: Callable[[str], Topology],
    stopwatch: Stopwatch,
    records: Records,
    programs: Mapping[str, str | None] | None = None,
) -> tuple[Restored, BackupSource]:
    """Restore ``nightly`` into a sandbox made by ``make_topology(installation spec)``."""
    spec = nightly.spec
    records.context.update(source=spec.name, source_kind=spec.kind, backend=nightly.backend)
    source = open_source(spec, programs)
    major = source.major()
    chosen, _ = choose_installation(
        spec, major, source.exact_major, candidates, nightly.backend == "docker", find_installation
    )
    topology = make_topology(chosen)
    require_local_files(topology.host, "Restoring a real backup")
    records.context.update(postgres=topology.inst.label, postgres_version=topology.inst.version)
    stopwatch.lap("open backup")
    if not host_sees(topology.host, source.paths()):
        staged = stage(spec, source.paths(), topology.root / "staged", topology.host)
        source = open_source(staged, programs)
        stopwatch.lap("stage copy")
    restored = source.restore(topology, target_of(spec), stopwatch)
    record_restore(records, restored, stopwatch)
    return restored, source


def record_restore(records: Records, restored: Restored, stopwatch: Stopwatch) -> None:
    """The backup's identity, its size and age, and the restore's throughput."""
    identity = restored.identity
    records.context["backup"] = identity.label
    records.record("backup", identity.as_dict())
    if restored.replayed_to:
        records.record("replayed to", restored.replayed_to)
    records.figure("backup size", float(identity.size), "B")
    seconds = sum(s for name, s in stopwatch.phases().items() if name in RESTORE_PHASES)
    if seconds > 0:
        records.figure("restored bytes", float(restored.restored_bytes), "B")
        records.figure("restore throughput", round(restored.restored_bytes / seconds, 1), "B/s")
    stopped = _parse_time(identity.stopped or identity.started)
    if stopped is not None:
        age = (dt.datetime.now(dt.UTC) - stopped).total_seconds()
        records.figure("backup age", round(age, 1), "s")


__all__ = ["NightlySource", "Records", "record_restore", "restore_nightly"]
