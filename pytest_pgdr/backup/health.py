"""Freshness and continuity, from a tool's own info, without a restore.

What a team checks every night before it needs a restore (check_pgbackrest, ``barman check``'s
"backup maximum age"): the newest backup is young enough, and the WAL after it has no hole, so
a restore can reach the present. Budgets are in seconds; figures are ready for a report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pytest_pgdr.backup.base import BackupToolError, RepoInfo


@dataclass(frozen=True)
class Health:
    """The state of one tool's repository at one moment."""

    tool: str
    backups: int
    newest_backup: str
    newest_backup_age_s: float | None  # None: no backup at all
    last_wal: str
    wal_segments: int
    gaps: tuple[tuple[str, str], ...]  # missing segments after the oldest backup

    @classmethod
    def of(cls, info: RepoInfo, now: float | None = None) -> Health:
        newest = info.newest()
        oldest = min(info.backups, key=lambda b: b.stopped) if info.backups else None
        gaps = info.gaps_after(oldest) if oldest else info.gaps()
        return cls(
            tool=info.tool,
            backups=len(info.backups),
            newest_backup=newest.id if newest else "",
            newest_backup_age_s=info.newest_age(now or time.time()),
            last_wal=info.wal[-1] if info.wal else "",
            wal_segments=len(info.wal),
            gaps=tuple(gaps),
        )

    def figures(self) -> dict[str, tuple[float, str]]:
        """Name -> (value, unit), for ``Measurement.figure``."""
        out: dict[str, tuple[float, str]] = {
            "backups in repository": (float(self.backups), "count"),
            "archived WAL segments": (float(self.wal_segments), "count"),
            "WAL gaps": (float(len(self.gaps)), "count"),
        }
        if self.newest_backup_age_s is not None:
            out["newest backup age"] = (round(self.newest_backup_age_s, 3), "s")
        return out

    def problems(self, max_backup_age_s: float) -> list[str]:
        out = []
        if self.newest_backup_age_s is None:
            out.append("the repository holds no backup")
        elif self.newest_backup_age_s > max_backup_age_s:
            out.append(
                f"the newest backup ({self.newest_backup}) is {self.newest_backup_age_s:.0f} s"
                f" old, over the budget of {max_backup_age_s:.0f} s"
            )
        for first, last in self.gaps:
            what = first if first == last else f"{first}..{last}"
            out.append(f"WAL {what} is missing: a restore cannot replay past it")
        return out

    def check(self, max_backup_age_s: float) -> None:
        """Raise :class:`BackupToolError` naming every problem found."""
        problems = self.problems(max_backup_age_s)
        if problems:
            raise BackupToolError(
                f"The {self.tool} repository is not fit for a restore: {problems[0]}",
                f"{len(problems)} problem(s) found in the tool's own info",
                "Take a new backup now and find why backups or archiving stopped",
                log_lines=problems,
                log_name=f"{self.tool} health",
            )
