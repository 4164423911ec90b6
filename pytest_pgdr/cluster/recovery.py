"""Recovery targets: where a point-in-time recovery stops and what the server does there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pytest_pgdr.basics.errors import ConfigError

KINDS = ("immediate", "xid", "time", "name", "lsn", "latest")
ACTIONS = ("promote", "pause", "shutdown")


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
        if self.kind in ("xid", "time", "name", "lsn") and not self.value:
            raise ConfigError(f"A recovery target of kind {self.kind!r} needs a value")

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
