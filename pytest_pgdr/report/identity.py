"""Which run a report is: the git commit of the rootdir, the CI run's link, and every
PostgreSQL, image and tool the drills used, as plain text."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 5


def git_commit(root: Path | None) -> dict[str, Any] | None:
    """``{"commit", "branch", "dirty"}`` when ``root`` is in a git checkout, else None."""
    if root is None:
        return None

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args],
                capture_output=True,
                text=True,
                timeout=GIT_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status),
    }


def ci_link(env: Mapping[str, str] | None = None) -> str | None:
    """The CI run's page from the usual variables (GitHub Actions, GitLab, Jenkins, ...)."""
    env = os.environ if env is None else env
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    for name in ("CI_JOB_URL", "BUILD_URL", "CIRCLE_BUILD_URL", "BUILDKITE_BUILD_URL"):
        if env.get(name):
            return env[name]
    return None


def versions_used(drills: Sequence[Mapping[str, Any]], environment: Mapping[str, Any]) -> list[str]:
    """Every PostgreSQL (configured or used by a drill), image and tool, one text each."""
    seen: dict[str, None] = {}
    for inst in environment.get("postgres", []):
        text = f"PostgreSQL {inst.get('label')} {inst.get('version') or ''}".strip()
        seen[text + (f" (image {inst['image']})" if inst.get("image") else "")] = None
    labels = {str(i.get("label")) for i in environment.get("postgres", [])}
    for drill in drills:
        for label in str(drill.get("postgres") or "").split(" -> "):
            if label and label not in labels:
                labels.add(label)
                version = (
                    drill.get("postgres_version") if " -> " not in str(drill["postgres"]) else None
                )
                seen[f"PostgreSQL {label} {version or ''}".strip()] = None
        tool = (drill.get("context") or {}).get("backup_tool")
        if tool:
            seen[str(tool)] = None
    if environment.get("image"):
        seen[f"image {environment['image']}"] = None
    for name, version in (environment.get("packages") or {}).items():
        if version:
            seen[f"{name} {version}"] = None
    if environment.get("python"):
        seen[f"Python {environment['python']}"] = None
    return list(seen)
