"""Where drills run (backend/version targets), which cannot run here, and how many ran.

A target is ``local/pg18`` or ``docker/pg15``: the header names them, the summary counts the
drills that ran on each (``pgdr: ran 34 drills: local/pg18 17, docker/pg18 17; skipped 2``).
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_pgdr.basics.errors import ConfigError
from pytest_pgdr.basics.settings import DOCKER_PREFIX, Settings

DOCKER_EXTRA = ("docker", "testcontainers")
OTHER = "no installation"


def target(spec: str | None, inst: Any) -> str:
    """``local/pg18`` for an installation; for an absent one, guessed from the spec."""
    if spec is None:
        return OTHER
    backend = "docker" if spec.startswith(DOCKER_PREFIX) else "local"
    if inst is not None:
        return f"{backend}/pg{inst.major}"
    name = spec.removeprefix(DOCKER_PREFIX)
    if backend == "docker":
        name = name.rsplit("/", 1)[-1].removesuffix(":latest")
    match = re.search(r"(\d+)", name)
    return f"{backend}/pg{match.group(1)}" if match else f"{backend}/{name}"


def unavailable_specs(settings: Settings, installs: Sequence[Any]) -> dict[str, str]:
    """Installation specs that cannot run in this run, with the reason (one paragraph)."""
    docker_specs = [s for s in settings.specs() if s.startswith(DOCKER_PREFIX)]
    if not docker_specs:
        return {}
    missing = [m for m in DOCKER_EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        reason = ConfigError(
            "The docker backend was chosen but its Python packages are not installed",
            f"the Python package{'s' if len(missing) > 1 else ''}"
            f" {' and '.join(repr(m) for m in missing)} cannot be imported",
            "Install them with pip install 'pytest-pgdr[docker]', or run with --pgdr-backend=local",
        )
    elif all(
        i is not None for s, i in zip(settings.specs(), installs, strict=False) if s in docker_specs
    ):
        return {}
    else:
        from pytest_pgdr.hosts.docker import docker_status

        reason = ConfigError(
            "The docker backend was chosen but Docker is not reachable",
            docker_status()[1],
            "Otherwise run with --pgdr-backend=local",
        )
    return dict.fromkeys(docker_specs, str(reason))


def count_line(outcomes: Mapping[str, tuple[str, str]]) -> str:
    """``outcomes``: node id -> (target, outcome). Drills that passed or failed ran."""
    ran = Counter(t for t, outcome in outcomes.values() if outcome in ("passed", "failed"))
    skipped = Counter(t for t, outcome in outcomes.values() if outcome == "skipped")
    per = ", ".join(f"{t} {n}" for t, n in sorted(ran.items()))
    line = f"pgdr: ran {sum(ran.values())} drill{'s' if sum(ran.values()) != 1 else ''}"
    line += f": {per}" if per else ""
    if skipped:
        where = ", ".join(f"{t} {n}" for t, n in sorted(skipped.items()))
        line += f"; skipped {sum(skipped.values())} ({where})"
    return line
