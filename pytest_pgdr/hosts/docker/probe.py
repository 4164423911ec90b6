"""What a PostgreSQL image holds: probed once per image id in a throw-away container."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_pgdr.basics.errors import MissingBinaryError
from pytest_pgdr.hosts.docker.engine import DockerError, _ignore_missing, _short, docker_client
from pytest_pgdr.hosts.docker.labels import LABEL_BINDIR, LABEL_ROLE, owner_labels
from pytest_pgdr.hosts.install import MIN_MAJOR, SERVER_PROGRAMS, Installation
from pytest_pgdr.hosts.osuser import OsUser, host_account

PROBE_TIMEOUT = 60.0
BUILD_HINT = (
    "Build the pytest-pgdr images with 'python -m pytest_pgdr.hosts.images build', or list"
    " the local ones with 'docker images'"
)
PROBE_SCRIPT = r"""
echo "uid=$(id -u postgres 2>/dev/null)"
echo "gid=$(id -g postgres 2>/dev/null)"
b="$1"
if [ -z "$b" ]; then
  p=$(command -v postgres 2>/dev/null)
  if [ -n "$p" ]; then b=$(dirname "$p"); else b=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1); fi
fi
echo "bindir=$b"
echo "version=$("$b/postgres" --version 2>&1)"
echo "programs=$(ls "$b" 2>/dev/null | tr '\n' ' ')"
"""


@dataclass(frozen=True)
class ImageFacts:
    """What a PostgreSQL image holds, probed once per image id."""

    image: str
    image_id: str
    uid: int | None
    gid: int | None
    bindir: str
    version_text: str
    programs: frozenset[str]


def _image_attrs(image: str) -> dict[str, Any]:
    import docker.errors

    try:
        client = docker_client()
    except DockerError as exc:
        raise MissingBinaryError(
            f"Cannot use the Docker image {image!r}: Docker is not reachable", exc.why
        ) from None
    try:
        return dict(client.images.get(image).attrs)
    except docker.errors.ImageNotFound:
        raise MissingBinaryError(
            f"The Docker image {image!r} is not on this machine",
            "images are never pulled (there may be no registry here); it must be built locally",
            BUILD_HINT,
        ) from None
    except docker.errors.APIError as exc:
        raise MissingBinaryError(
            f"Docker could not inspect the image {image!r}", _short(exc), BUILD_HINT
        ) from None


def probe_image(image: str) -> ImageFacts:
    """Inspect ``image`` and run one throw-away container to read its PostgreSQL facts."""
    attrs = _image_attrs(image)
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return _probe(image, str(attrs["Id"]), labels.get(LABEL_BINDIR, ""))


@functools.lru_cache(maxsize=16)
def _probe(image: str, image_id: str, bindir: str) -> ImageFacts:
    output = _run_throwaway(image_id, ["sh", "-c", PROBE_SCRIPT, "sh", bindir])
    facts = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def number(key: str) -> int | None:
        return int(facts[key]) if facts.get(key, "").isdigit() else None

    return ImageFacts(
        image,
        image_id,
        number("uid"),
        number("gid"),
        facts.get("bindir", ""),
        facts.get("version", ""),
        frozenset(facts.get("programs", "").split()),
    )


def _run_throwaway(image_id: str, argv: list[str]) -> str:
    """Run ``argv`` in a new container of a local image (never pulled); its output."""
    client = docker_client()
    container = client.containers.create(
        image_id,
        entrypoint=argv[:1],
        command=argv[1:],
        network_mode="none",
        user="0",
        labels={**owner_labels(), LABEL_ROLE: "probe"},
    )
    try:
        container.start()
        container.wait(timeout=PROBE_TIMEOUT)
        return str(container.logs(stdout=True, stderr=True).decode("utf-8", "replace"))
    except Exception as exc:
        raise MissingBinaryError(
            f"Probing the Docker image {image_id[:19]} failed", _short(exc), BUILD_HINT
        ) from None
    finally:
        _ignore_missing(lambda: container.remove(force=True))


def image_user(image: str, harness: OsUser | None = None) -> OsUser:
    """The image's ``postgres`` user, to run containers as and to own the bind-mounted files.

    Refused when its uid is an account of this machine other than ``harness`` (the server
    user of the local backend) or this process's own: that account would own the data
    directories, the password file and the trusted sockets.
    """
    facts = probe_image(image)
    if facts.uid is None or facts.gid is None or facts.uid == 0:
        raise MissingBinaryError(
            f"The Docker image {image!r} has no unprivileged 'postgres' user",
            "servers run as the image's postgres uid:gid (PostgreSQL refuses root)",
            "Use an image with a postgres user (the official postgres:N images have one)",
        )
    account = host_account(facts.uid)
    own = {os.geteuid(), *([harness.uid] if harness is not None else [])}
    if account is not None and facts.uid not in own:
        raise MissingBinaryError(
            f"The Docker image {image!r} runs PostgreSQL as uid {facts.uid}, which on this"
            f" machine is the account {account!r}",
            "the files its containers share with this machine (data directories, the password"
            " file, sockets trusted without a password) would belong to that account, which"
            " could then read them and connect as superuser",
            "Rebuild the pytest-pgdr images, which pick a uid unused here"
            " ('python -m pytest_pgdr.images build --force'), or use an image whose postgres"
            " uid is no account on this machine",
        )
    return OsUser(name="postgres(image)", uid=facts.uid, gid=facts.gid)


def image_installation(image: str) -> Installation:
    """The PostgreSQL inside a local Docker image (never pulled)."""
    facts = probe_image(image)
    match = re.search(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?", facts.version_text)
    if not facts.bindir or match is None:
        raise MissingBinaryError(
            f"The Docker image {image!r} holds no runnable PostgreSQL server",
            f"bindir {facts.bindir or '(not found)'}: {facts.version_text.strip()[:200]}",
            f"Label it {LABEL_BINDIR}=<bin dir>, or put postgres on its PATH. {BUILD_HINT}",
        )
    missing = [p for p in SERVER_PROGRAMS if p not in facts.programs]
    version = f"{match.group(1)}.{match.group(2) or 0}"
    if missing or int(match.group(1)) < MIN_MAJOR:
        raise MissingBinaryError(
            f"PostgreSQL {version} in the Docker image {image!r} is unusable",
            f"{facts.bindir} lacks {', '.join(missing)}"
            if missing
            else f"pytest-pgdr supports PostgreSQL {MIN_MAJOR} and newer",
            BUILD_HINT,
        )
    return Installation(
        bindir=Path(facts.bindir),
        version=version,
        source=f"docker {image}",
        spec=image,
        image=image,
        programs=facts.programs,
    )
