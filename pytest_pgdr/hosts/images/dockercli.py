"""Running commands, and asking the ``docker`` CLI about images."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from pytest_pgdr.hosts.images.specs import (
    DEFAULT_DOCKER_HOST,
    DOCKER_TIMEOUT,
    IMAGES,
    ImageBuildError,
)


def _tail(text: str | bytes | None, lines: int = 15) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def _run(
    cmd: Sequence[str],
    *,
    what: str,
    hint: str,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run *cmd*; on failure raise ImageBuildError naming *what* and *hint*."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError as exc:
        raise ImageBuildError(f"{what}: {cmd[0]} not found ({exc}). {hint}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildError(
            f"{what}: `{' '.join(cmd)}` timed out after {timeout}s. {hint}"
        ) from exc
    if proc.returncode != 0:
        out = _tail(proc.stderr) or _tail(proc.stdout)
        raise ImageBuildError(f"{what}: `{' '.join(cmd)}` exited {proc.returncode}:\n{out}\n{hint}")
    return proc


def _docker(*args: str, timeout: float | None = DOCKER_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI without raising; returns the completed process."""
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return subprocess.CompletedProcess(
            ["docker", *args], 127, "", "docker CLI not found on PATH"
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            ["docker", *args], 124, "", f"timed out after {timeout}s"
        )


def _docker_host_text() -> str:
    host = os.environ.get("DOCKER_HOST")
    return (
        f"DOCKER_HOST={host}"
        if host
        else f"DOCKER_HOST unset, so the default {DEFAULT_DOCKER_HOST}"
    )


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers; on False, a reason naming what was tried."""
    if shutil.which("docker") is None:
        return False, (
            "the `docker` CLI is not on PATH; install the Docker CLI and engine "
            f"(tried `shutil.which('docker')`, {_docker_host_text()})"
        )
    proc = _docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    if proc.returncode != 0 or not proc.stdout.strip():
        msg = _tail(proc.stderr, 3) or _tail(proc.stdout, 3) or f"exit {proc.returncode}"
        msg = msg.rstrip(". ")
        return False, (
            f"`docker info` failed with {_docker_host_text()}: {msg}. "
            "Start the Docker engine or point DOCKER_HOST at one."
        )
    return True, f"Docker engine {proc.stdout.strip()} ({_docker_host_text()})"


def _require_docker() -> None:
    ok, reason = docker_available()
    if not ok:
        raise ImageBuildError(f"cannot build the pytest-pgdr images: {reason}")


def image_exists(tag: str) -> bool:
    """True when the local Docker engine has an image called *tag*."""
    return _docker("image", "inspect", "--format", "{{.Id}}", tag).returncode == 0


def image_labels(tag: str) -> dict[str, str]:
    """The labels of local image *tag* (empty when it has none or is missing)."""
    proc = _docker(
        "image",
        "inspect",
        "--format",
        "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}\n{{end}}",
        tag,
    )
    if proc.returncode != 0:
        return {}
    labels: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            labels[key] = value
    return labels


def image_size(tag: str) -> int | None:
    """Size in bytes of local image *tag*, or None when it is missing."""
    proc = _docker("image", "inspect", "--format", "{{.Size}}", tag)
    if proc.returncode != 0:
        return None
    try:
        return int(proc.stdout.strip())
    except ValueError:
        return None


def _rebuild_hint(tag: str) -> str:
    name = next((n for n, spec in IMAGES.items() if spec.tag == tag), "")
    only = f" --only {name}" if name else ""
    return f"Rebuild it: python -m pytest_pgdr.hosts.images build --force{only}"


def postgres_version(tag: str, bindir: str) -> str:
    """Output of `<bindir>/postgres --version` run in a throw-away container."""
    proc = _run(
        ["docker", "run", "--rm", "--network", "none", tag, f"{bindir}/postgres", "--version"],
        what=f"running postgres --version in {tag}",
        hint=_rebuild_hint(tag),
        timeout=120,
    )
    return proc.stdout.strip()
