"""Recovery targets: where a point-in-time recovery stops and what the server does there."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pytest_pgdr.basics.errors import ConfigError

KINDS = ("immediate", "xid", "time", "name", "lsn", "latest")
ACTIONS = ("promote", "pause", "shutdown")
LSN_FORM = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
NAME_MAX_BYTES = 63  # MAXFNAMELEN - 1: PostgreSQL's limit for a restore point name
FORMS = {
    "xid": "a positive integer transaction id, e.g. 748 (SELECT pg_current_xact_id())",
    "lsn": "a WAL location X/X in hexadecimal, e.g. 0/3000148 (SELECT pg_current_wal_lsn())",
    "time": "a timestamp with a time zone, e.g. 2026-01-31 12:00:00.123+00 or a timezone-aware"
    " datetime (SELECT now())",
    "name": f"a restore point name: not empty, at most {NAME_MAX_BYTES} bytes"
    " (SELECT pg_create_restore_point('before_release'))",
}


def parse_time(text: str) -> dt.datetime | None:
    """A recovery target time as an aware datetime; None when it has no time zone or cannot
    be read (ISO 8601 with an offset, or PostgreSQL's output with a UTC/GMT/Z suffix)."""
    text = text.strip()
    text = re.sub(r"\s*(UTC|GMT|Z)$", "+00:00", text, flags=re.IGNORECASE)
    text = re.sub(r"([+-]\d\d)$", r"\1:00", text)  # PostgreSQL's "+00" offset
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _valid(kind: str, value: str) -> bool:
    if kind == "xid":
        return value.isascii() and value.isdigit() and 0 < int(value) < 2**64
    if kind == "lsn":
        return LSN_FORM.match(value) is not None
    if kind == "time":
        return parse_time(value) is not None
    if kind == "name":
        return 0 < len(value.encode()) <= NAME_MAX_BYTES
    return True


@dataclass(frozen=True)
class RecoveryTarget:
    """Build one with the class methods: ``RecoveryTarget.name("before_delete")`` etc."""

    kind: str = "latest"
    value: str = ""
    inclusive: bool = True
    action: str = "promote"
    timeline: str = "latest"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(
                f"Unknown recovery target kind {self.kind!r}", f"valid kinds: {', '.join(KINDS)}"
            )
        if self.action not in ACTIONS:
            raise ConfigError(
                f"Unknown recovery_target_action {self.action!r}",
                f"valid actions: {', '.join(ACTIONS)}",
            )
        if self.kind in FORMS and not _valid(self.kind, self.value):
            raise ConfigError(
                f"Bad recovery target {self.kind} {self.value!r}",
                f"the {self.kind} target takes {FORMS[self.kind]}",
                "Pass a value of that form (PostgreSQL would refuse this one at startup, or"
                " read it as something else)",
            )

    @property
    def time_value(self) -> dt.datetime | None:
        """The target time as an aware datetime (time targets only)."""
        return parse_time(self.value) if self.kind == "time" else None

    @classmethod
    def immediate(cls, action: str = "promote") -> RecoveryTarget:
        return cls("immediate", action=action)

    @classmethod
    def latest(cls) -> RecoveryTarget:
        """Replay everything in the archive (no target), then promote."""
        return cls("latest")

    @classmethod
    def xid(cls, xid: int | str, inclusive: bool = True, action: str = "promote") -> RecoveryTarget:
        return cls("xid", str(xid), inclusive, action)

    @classmethod
    def time(
        cls, when: dt.datetime | str, inclusive: bool = True, action: str = "promote"
    ) -> RecoveryTarget:
        if isinstance(when, dt.datetime):
            if when.tzinfo is None:
                raise ConfigError(
                    "A recovery target time must carry a time zone",
                    "a naive time is read in the server's time zone",
                    "Use the server's now() or a timezone-aware datetime",
                )
            when = when.isoformat()
        return cls("time", when, inclusive, action)

    @classmethod
    def name(cls, restore_point: str, action: str = "promote") -> RecoveryTarget:
        return cls("name", restore_point, True, action)

    @classmethod
    def lsn(cls, lsn: object, inclusive: bool = True, action: str = "promote") -> RecoveryTarget:
        return cls("lsn", str(lsn), inclusive, action)

    def settings(self) -> dict[str, object]:
        """The recovery settings for postgresql.conf (without restore_command)."""
        out: dict[str, object] = {"recovery_target_timeline": self.timeline}
        if self.kind == "latest":
            return out
        if self.kind == "immediate":
            out["recovery_target"] = "immediate"
        else:
            out[f"recovery_target_{self.kind}"] = self.value
            out["recovery_target_inclusive"] = self.inclusive
        out["recovery_target_action"] = self.action
        return out

    def describe(self) -> str:
        if self.kind in ("latest", "immediate"):
            return self.kind
        incl = "" if self.inclusive else " (exclusive)"
        return f"{self.kind} {self.value}{incl}, then {self.action}"
