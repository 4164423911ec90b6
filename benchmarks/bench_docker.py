"""Benchmark of the Docker backend (prints figures; never a timed test).

    python benchmarks/bench_docker.py [--image pytest-pgdr/pg15:latest] [--runs 5]

Medians of: a ready primary plus a caught-up streaming replica in containers (docker backend,
from nothing: the topology's network and toolbox container included); the same pair on the
local backend (embedded PostgreSQL); and two plain container starts, one after the other, as
a test suite without pytest-pgdr would get them. Target: the pair in containers is ready in
at most the time of the two plain starts.

A plain start is testcontainers' ``PostgresContainer`` when the image has the official
entrypoint (``docker-entrypoint.sh``). The pytest-pgdr images have none, so the plain start
is then a ``DockerContainer`` of the image that runs initdb and postgres, published on a
random port, its data directory on a tmpfs, waited for until ``pg_isready`` succeeds inside it
(what ``PostgresContainer`` does, minus the entrypoint's second server start and with faster
storage than its volume): the output says which was measured.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # before testcontainers is imported

from pytest_pgdr import HarnessSession, Settings, Topology  # noqa: E402
from pytest_pgdr.basics.wait import poll  # noqa: E402
from pytest_pgdr.hosts.docker import docker_client, owner_labels  # noqa: E402

IMAGE = "pytest-pgdr/pg15:latest"
LOCAL = "embedded"
PLAIN_DATA = "/pgdata"  # a tmpfs: faster than the official image's volume (favours plain)
PLAIN_COMMAND = (
    f"initdb -D {PLAIN_DATA}/data -U postgres -A trust --no-sync >/dev/null"
    f" && exec postgres -D {PLAIN_DATA}/data -c listen_addresses='*'"
)


def pair(topo: Topology) -> None:
    primary = topo.primary(archive=False)
    replica = topo.replica(primary)
    topo.wait_caught_up(primary, replica)


def timed_pair(session: HarnessSession, spec: str, runs: int) -> tuple[float, float]:
    """Median seconds from nothing to a caught-up pair, and of that the topology's creation
    (a Docker network and toolbox container; nothing on the local backend)."""
    inst = session.installation(spec)
    totals, setups = [], []
    for _ in range(runs):
        started = time.perf_counter()
        topo = session.topology(inst, "bench")
        try:
            setups.append(time.perf_counter() - started)
            pair(topo)
            totals.append(time.perf_counter() - started)
        finally:
            topo.close()
    return statistics.median(totals), statistics.median(setups)


def official_entrypoint(image: str) -> bool:
    config = docker_client().images.get(image).attrs.get("Config") or {}
    return "docker-entrypoint.sh" in " ".join(config.get("Entrypoint") or [])


def plain_start(image: str, official: bool) -> Callable[[], Any]:
    """Start one plain container and wait until its server is ready; returns it."""
    if official:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.postgres import PostgresContainer

        return lambda: PostgresContainer(image=image, driver=None).start()

    from testcontainers.core.container import DockerContainer

    def start() -> Any:
        box = DockerContainer(
            image,
            entrypoint=["sh", "-c"],
            command=shlex.quote(PLAIN_COMMAND),
            user="postgres",
            labels=owner_labels(),
        )  # swept if killed
        box.tmpfs[PLAIN_DATA] = "mode=1777"
        box.with_exposed_ports(5432).start()
        poll(
            lambda: box.exec(["pg_isready", "-q", "-h", "127.0.0.1"]).exit_code == 0,
            "the plain container's server to be ready",
            60,
            interval=0.01,
        )
        return box

    return start


def timed_plain(image: str, official: bool, runs: int, count: int = 2) -> tuple[float, float]:
    """Median seconds for ``count`` plain starts one after the other, and for one start."""
    start = plain_start(image, official)
    totals, singles = [], []
    for _ in range(runs):
        boxes = []
        try:
            began = time.perf_counter()
            for _ in range(count):
                one = time.perf_counter()
                boxes.append(start())
                singles.append(time.perf_counter() - one)
            totals.append(time.perf_counter() - began)
        finally:
            for box in boxes:
                box.stop()
    return statistics.median(totals), statistics.median(singles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--local", default=LOCAL, help="local installation (default embedded)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    session = HarnessSession(Settings(enabled=True, backend="docker", image=(args.image,)))
    try:
        spec = f"docker:{args.image}"
        inst, local = session.installation(spec), session.installation(args.local)
        official = official_entrypoint(args.image)
        timed_pair(session, spec, 1)  # warm: the template data directories, image probes
        timed_pair(session, args.local, 1)
        timed_plain(args.image, official, 1, count=1)
        docker_pair, docker_setup = timed_pair(session, spec, args.runs)
        local_pair, _ = timed_pair(session, args.local, args.runs)
        volumes = HarnessSession(
            Settings(enabled=True, backend="docker", image=(args.image,), docker_storage="volume")
        )
        try:
            timed_pair(volumes, spec, 1)  # warm: the run's template volume
            volume_pair, volume_setup = timed_pair(volumes, spec, args.runs)
        finally:
            volumes.close()
        two_plain, one_plain = timed_plain(args.image, official, args.runs)
    finally:
        session.close()
    plain = (
        "testcontainers PostgresContainer"
        if official
        else "DockerContainer running initdb + postgres (data on a tmpfs), ready at pg_isready;"
        " PostgresContainer needs the official entrypoint, which this image lacks"
    )
    print(f"pytest-pgdr docker benchmark: {inst.describe()}, median of {args.runs} runs")
    print(
        f"  primary + caught-up replica, docker backend  {docker_pair:7.3f} s"
        f"   (network + toolbox {docker_setup:.3f} s)"
    )
    print(
        f"  the same pair on Docker volumes              {volume_pair:7.3f} s"
        f"   (network + toolbox + volumes {volume_setup:.3f} s; files through the engine)"
    )
    print(f"  primary + caught-up replica, local backend   {local_pair:7.3f} s   ({local.label})")
    print(f"  one plain container start                    {one_plain:7.3f} s")
    print(f"  two plain container starts                   {two_plain:7.3f} s")
    print(
        f"  docker pair / two plain starts               {docker_pair / two_plain:7.2f} x"
        f"   (target <= 1.00 x: {'met' if docker_pair <= two_plain else 'NOT met'})"
    )
    print(f"  plain start = {plain}")


if __name__ == "__main__":
    main()
