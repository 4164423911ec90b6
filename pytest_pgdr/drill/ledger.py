"""The client-side ledger of a :class:`~pytest_pgdr.drill.writer.Writer`: every acknowledged
commit, every failed attempt, and what they say about a fault (write outage, RPO).

The outage a client sees begins at the fault and ends with the first commit acknowledged
*after recovery*: after the first failed attempt that followed the fault (the writer then
reconnected, to the promoted node or the restarted one), or, when nothing failed, with the
commit that closed a gap in the acknowledgements (a frozen server answers late, not wrongly).
Commits the dying server still acknowledged in between (a ``docker kill`` takes ~150 ms) are
in-flight acknowledgements, not the end of the outage. With neither a failure nor a gap after
the fault the writer could not observe the outage: it is reported as unknown (``None``), never
as a small number.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LOST_SHOWN = 50
MAX_ERRORS_KEPT = 200


@dataclass(frozen=True)
class Ack:
    """One acknowledged commit: the client's clock when the commit returned, the server's."""

    id: int
    client_t: float
    server_t: datetime
    timeline: int
    node: str
    lsn: str

    def as_dict(self, origin: float | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "t_s": _rel(self.client_t, origin),
            "server_time": self.server_t.isoformat(),
            "timeline": self.timeline,
            "node": self.node,
            "lsn": self.lsn,
        }


@dataclass(frozen=True)
class WriteError:
    client_t: float
    node: str
    message: str
    kind: str = "other"  # its class (see :mod:`~pytest_pgdr.drill.clienterrors`)


@dataclass(frozen=True)
class Outage:
    """The write outage a client saw from ``start`` (the fault) to ``first_after``.

    ``observed`` is False when the writer saw neither a failed attempt nor a gap after the
    fault: ``seconds`` is then None (unknown), while ``recovered`` says writes went on.
    """

    fault_at: float | None
    last_before: Ack | None
    first_after: Ack | None
    attempts_failed: int
    ended_at: float
    start: float | None = None
    observed: bool = True
    last_old: Ack | None = None  # the last ack before first_after (in flight, maybe after start)
    acked_after_fault: int = 0  # acks between the fault and the end of the outage
    writes_went_on: bool = False  # not observed, but commits were acknowledged after the fault
    #: failed attempts from the fault to the end of the outage, by class
    errors_by_class: Mapping[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        if not self.observed or self.start is None or self.first_after is None:
            return None
        return self.first_after.client_t - self.start

    @property
    def recovered(self) -> bool:
        return self.first_after is not None or self.writes_went_on

    @property
    def server_gap_s(self) -> float | None:
        """The gap between the last write before the outage ended and the first after it, by
        the servers' clocks (CloudNativePG's write RTO)."""
        if self.seconds is None or self.last_old is None or self.first_after is None:
            return None
        return (self.first_after.server_t - self.last_old.server_t).total_seconds()

    def as_dict(self, origin: float | None = None) -> dict[str, Any]:
        before, after = self.last_before, self.first_after
        end = after.client_t if after else self.ended_at
        return {
            "seconds": _round(self.seconds),
            "server_gap_s": _round(self.server_gap_s),
            "observed": self.observed,
            "recovered": self.recovered,
            "start_s": _rel(self.start, origin),
            "end_s": _rel(end if self.observed else self.start, origin),
            "fault_s": _rel(self.fault_at, origin),
            "last_before": before.as_dict(origin) if before else None,
            "first_after": after.as_dict(origin) if after else None,
            "acked_after_fault": self.acked_after_fault,
            "failed_attempts": self.attempts_failed,
            "errors_by_class": dict(self.errors_by_class),
        }


@dataclass(frozen=True)
class Rpo:
    """Acknowledged commits missing from ``node``, and the WAL the new timeline left behind."""

    node: str
    acknowledged: int
    lost: tuple[Ack, ...]
    window_s: float
    wal_bytes: int | None = None
    old_lsn: str | None = None
    timeline_start: str | None = None

    @property
    def lost_commits(self) -> int:
        return len(self.lost)

    def as_dict(self, origin: float | None = None) -> dict[str, Any]:
        return {
            "checked_on": self.node,
            "acknowledged": self.acknowledged,
            "lost_commits": self.lost_commits,
            "window_s": round(self.window_s, 6),
            "wal_bytes": self.wal_bytes,
            "old_lsn": self.old_lsn,
            "timeline_start": self.timeline_start,
            "lost": [a.as_dict(origin) for a in self.lost[:LOST_SHOWN]],
        }


@dataclass
class Ledger:
    """Everything the writer thread learns; guarded by ``cond``.

    ``failed_at`` holds the client time of every failed attempt (a commit that errored, or a
    connection to a candidate that failed); ``unacknowledged`` the ids of failed commits.
    """

    cond: threading.Condition = field(default_factory=threading.Condition)
    acks: list[Ack] = field(default_factory=list)
    errors: list[WriteError] = field(default_factory=list)
    failed: int = 0
    unacknowledged: list[int] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)
    failed_kinds: list[str] = field(default_factory=list)  # the class of each failed_at

    def record_ack(self, ack: Ack) -> None:
        with self.cond:
            self.acks.append(ack)
            self.cond.notify_all()

    def record_failure(
        self, at: float, row_id: int | None, node: str, message: str, kind: str = "other"
    ) -> None:
        with self.cond:
            self.failed_at.append(at)
            self.failed_kinds.append(kind)
            if row_id is not None:
                self.failed += 1
                self.unacknowledged.append(row_id)
            if len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append(WriteError(at, node, message, kind))

    def recovery_index(self, after: float, min_gap: float) -> int | None:
        """Index in ``acks`` of the first commit acknowledged after recovery from a fault at
        ``after``, or None (not recovered yet, or no outage observed). Call under ``cond``."""
        failure = next((t for t in self.failed_at if t > after), None)
        if failure is not None:
            return next((i for i, a in enumerate(self.acks) if a.client_t > failure), None)
        previous = None
        for i, ack in enumerate(self.acks):
            if ack.client_t > after:
                # the gap before this ack, even if it began before ``after`` (a thaw)
                since = after if previous is None else previous
                if ack.client_t - since >= min_gap:
                    return i
            previous = ack.client_t
        return None

    def errors_by_class(
        self, after: float | None = None, until: float | None = None
    ) -> dict[str, int]:
        """How many attempts failed in each class, between ``after`` and ``until``."""
        counts: dict[str, int] = {}
        with self.cond:
            for t, kind in zip(self.failed_at, self.failed_kinds, strict=True):
                if (after is None or t > after) and (until is None or t <= until):
                    counts[kind] = counts.get(kind, 0) + 1
        return counts

    def failed_after(self, after: float) -> bool:
        return any(t > after for t in self.failed_at)

    def outage(self, fault_at: float | None, min_gap: float, ended_at: float) -> Outage:
        """The outage after ``fault_at``; without one, around the longest gap between two
        acknowledged commits (measured from the last commit before it)."""
        with self.cond:
            acks = list(self.acks)
            if fault_at is None:
                return self._longest_gap(acks, ended_at)
            index = self.recovery_index(fault_at, min_gap)
            failed = self.failed_after(fault_at)
        before = [a for a in acks if a.client_t <= fault_at]
        after = acks[index] if index is not None else None
        upto = acks[:index] if index is not None else acks
        # without a failure, a silence that lasted until the writer stopped is an outage too
        last_t = max(acks[-1].client_t, fault_at) if acks else fault_at
        open_gap = after is None and ended_at - last_t >= min_gap
        observed = failed or after is not None or open_gap
        return Outage(
            fault_at,
            before[-1] if before else None,
            after,
            self._failed_between(before[-1].id if before else 0, after),
            ended_at,
            start=fault_at,
            observed=observed,
            last_old=upto[-1] if upto else None,
            acked_after_fault=sum(1 for a in upto if a.client_t > fault_at),
            writes_went_on=not observed and bool(acks) and acks[-1].client_t > fault_at,
            errors_by_class=self.errors_by_class(fault_at, after.client_t if after else None),
        )

    def _longest_gap(self, acks: list[Ack], ended_at: float) -> Outage:
        if len(acks) < 2:
            return Outage(None, None, None, 0, ended_at, observed=False)
        pairs = zip(acks, acks[1:], strict=False)
        _, before, after = max((b.client_t - a.client_t, a, b) for a, b in pairs)
        return Outage(
            before.client_t,
            before,
            after,
            self._failed_between(before.id, after),
            ended_at,
            start=before.client_t,
            last_old=before,
        )

    def _failed_between(self, low: int, after: Ack | None) -> int:
        with self.cond:
            high = after.id if after is not None else None
            return sum(1 for i in self.unacknowledged if low < i and (high is None or i < high))


def loss_window(acks: Sequence[Ack], lost: Sequence[Ack]) -> float:
    """Seconds of acknowledged writes lost: from the last surviving write before the first
    lost one to the last lost one (0 when nothing was lost)."""
    if not lost:
        return 0.0
    lost_ids = {a.id for a in lost}
    first = min(lost, key=lambda a: a.id)
    survivors = [a for a in acks if a.id < first.id and a.id not in lost_ids]
    since = survivors[-1].client_t if survivors else first.client_t
    return max(a.client_t for a in lost) - since


def _rel(t: float | None, origin: float | None) -> float | None:
    if t is None:
        return None
    return round(t - origin, 6) if origin is not None else round(t, 6)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
