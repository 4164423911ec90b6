"""A server's log file, read by offset so a drill can look only at what came after an action."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pytest_pgdr.hosts.files import Files, this_machine

IMPORTANT = re.compile(
    r"(FATAL|PANIC|ERROR|recovery stopping|consistent recovery state|pausing at the end"
    r"|shutdown at recovery target|selected new timeline|archive recovery complete"
    r"|redo done|database system is ready|could not|invalid|multiple recovery targets"
    r"|syntax error|contains errors|unrecognized configuration parameter)"
)
# lines that explain the line before them: always shown with it
FOLLOWER = re.compile(r"\b(DETAIL|HINT|CONTEXT|STATEMENT):  ")


@dataclass
class ServerLog:
    path: Path
    files: Files = field(default_factory=this_machine, repr=False)

    def offset(self) -> int:
        """The current end of the log; pass it to :meth:`since` later."""
        return self.files.file_sizes(self.path.parent).get(self.path.name, 0)

    def since(self, offset: int = 0) -> str:
        try:
            return self.files.read_bytes(self.path, offset).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def lines(self, offset: int = 0) -> list[str]:
        return self.since(offset).splitlines()

    def tail(self, count: int = 25, offset: int = 0) -> list[str]:
        return self.lines(offset)[-count:]

    def grep(self, pattern: str, offset: int = 0) -> list[str]:
        rx = re.compile(pattern)
        return [line for line in self.lines(offset) if rx.search(line)]

    def contains(self, pattern: str, offset: int = 0) -> bool:
        return re.search(pattern, self.since(offset)) is not None

    def important(self, offset: int = 0, count: int = 15) -> list[str]:
        """The lines worth showing in an error: failures and recovery milestones."""
        picked: list[str] = []
        follows = False
        for line in self.lines(offset):
            if IMPORTANT.search(line) and not FOLLOWER.search(line):
                picked.append(line)
                follows = True
            elif follows and FOLLOWER.search(line):
                picked.append(line)
            else:
                follows = False
        return _last(picked, count) or self.tail(count, offset)


def _last(lines: list[str], count: int) -> list[str]:
    """The last ``count`` lines, not starting in the middle of a message's DETAIL/HINT."""
    start = max(0, len(lines) - count)
    while 0 < start < len(lines) and FOLLOWER.search(lines[start]):
        start -= 1
    return lines[start:]
