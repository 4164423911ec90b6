"""WAL positions and WAL file arithmetic: LSNs, segment names, timeline history files."""

from __future__ import annotations

from dataclasses import dataclass

LONG_PAGE_HEADER = 40  # bytes at the start of each WAL segment


@dataclass(frozen=True)
class Lsn:
    """A WAL location; compares and subtracts as bytes."""

    value: int

    @classmethod
    def parse(cls, text: str) -> Lsn:
        high, low = text.split("/")
        return cls((int(high, 16) << 32) | int(low, 16))

    def __str__(self) -> str:
        return f"{self.value >> 32:X}/{self.value & 0xFFFFFFFF:X}"

    def __lt__(self, other: Lsn) -> bool:
        return self.value < other.value

    def __le__(self, other: Lsn) -> bool:
        return self.value <= other.value

    def __sub__(self, other: Lsn) -> int:
        return self.value - other.value


def history_parent(text: str) -> tuple[int, Lsn] | None:
    """The last entry of a timeline history file: the timeline replayed last, and the LSN
    where the new timeline branched off it (the end of replay)."""
    entries = [
        line.split()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not entries or len(entries[-1]) < 2:
        return None
    return int(entries[-1][0]), Lsn.parse(entries[-1][1])


def segment_number(name: str, segment_size: int) -> int:
    """The position of a WAL segment file name (timeline left aside)."""
    return int(name[8:16], 16) * (0x1_0000_0000 // segment_size) + int(name[16:24], 16)


def unreplayed_segments(
    segments: list[str], timeline: int, end: Lsn, segment_size: int
) -> list[str]:
    """Segments of ``timeline`` that lie wholly after ``end``, where replay stopped."""
    first_unread = -(-end.value // segment_size)  # the segment holding ``end`` was read
    prefix = f"{timeline:08X}"
    return sorted(
        name
        for name in segments
        if name.startswith(prefix) and segment_number(name, segment_size) >= first_unread
    )


def segment_name(timeline: str, number: int, segment_size: int) -> str:
    """The WAL file name of segment ``number`` on ``timeline`` (8 hex digits)."""
    per_id = 0x1_0000_0000 // segment_size
    return f"{timeline}{number // per_id:08X}{number % per_id:08X}"


def archive_gaps(segments: list[str], first: str, segment_size: int) -> list[str]:
    """The segments an archive lacks from ``first`` to the last one it holds, on any timeline
    (each named on the timeline of the segment before it): replay cannot cross one."""
    by_number: dict[int, str] = {}
    for name in sorted(segments):
        by_number[segment_number(name, segment_size)] = name  # the newest timeline wins
    start = segment_number(first, segment_size)
    later = [n for n in by_number if n >= start]
    if not later:
        return []
    missing, timeline = [], first[:8]
    for number in range(start, max(later) + 1):
        if number in by_number:
            timeline = by_number[number][:8]
        else:
            missing.append(segment_name(timeline, number, segment_size))
    return missing
