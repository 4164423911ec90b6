"""Run a topology's servers in Docker containers, one container per node.

Every node directory and the archive live under the topology's root directory on this machine.
Each container bind-mounts that root at the *same* path, so every path in postgresql.conf (data
directory, socket directory, archive and restore commands, passfile) means the same inside and
outside, and the harness keeps reading postmaster.pid, logs and the archive locally.

* one private network ``pgdr-<runid>-<label>`` per topology; a node's network alias is its name;
* one long-lived "toolbox" container runs client programs through ``docker exec`` (fast);
* a node's container ``pgdr-<runid>-<label>-<node>`` runs the postmaster as PID 1, as the
  image's ``postgres`` uid:gid, publishing port 5432 on 127.0.0.1 only;
* a node given a WAL limit (:meth:`DockerHost.limit_wal`) keeps ``pg_wal`` on a size-limited
  tmpfs volume, held mounted by a ``<node>-wal`` container so that it survives the node's
  container being replaced (a restart or a crash); :meth:`DockerHost.fill_wal` fills it.

Containers and networks carry labels naming the run directory and the owning process, so
:func:`sweep_docker_orphans` removes what a killed pytest process left (Ryuk is never used:
its image cannot be pulled where there is no registry).

Docker and testcontainers are imported lazily: the package imports without them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_pgdr.basics.errors import MissingBinaryError, PgdrError, WaitTimeout
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.hosts.install import MIN_MAJOR, SERVER_PROGRAMS, Installation
from pytest_pgdr.hosts.local import LocalHost
from pytest_pgdr.hosts.osuser import OsUser
from pytest_pgdr.hosts.runtime import RUN_PREFIX, RunDir, owner_alive, process_start_ticks

LABEL_RUN = "org.pytest-pgdr.run"
LABEL_RUNDIR = "org.pytest-pgdr.rundir"
LABEL_OWNER = "org.pytest-pgdr.owner"
LABEL_OWNER_START = "org.pytest-pgdr.owner-start"
LABEL_MACHINE = "org.pytest-pgdr.machine"
LABEL_HOST = "org.pytest-pgdr.host"
LABEL_ROLE = "org.pytest-pgdr.role"
LABEL_NODE = "org.pytest-pgdr.node"
LABEL_BINDIR = "org.pytest-pgdr.bindir"

SERVER_PORT = 5432
WAL_FS = "walfs"  # a WAL-limited node's tmpfs, mounted at <node dir>/walfs in its containers
WAL_FILLER = "pgdr-disk-full"  # the file that fills it (next to pg_wal, not inside)
WAL_SIZE_RX = re.compile(r"^[1-9][0-9]*[kmg]?$")
FULL_SLACK = 64 * 1024  # "full": less free than this (tmpfs rounds to pages)
SHM_SIZE = "256m"
PING_TIMEOUT = 2.0
API_TIMEOUT = 120
PROBE_TIMEOUT = 60.0
LONG_WAIT = 3600.0
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
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


class DockerError(PgdrError):
    """Docker is unreachable, or refused an operation on a container or network."""


# the engine -----------------------------------------------------------------------------
def docker_host_text() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else f"DOCKER_HOST unset, so {DEFAULT_SOCKET}"


def _ping_client() -> Any:
    import docker

    client = docker.from_env(timeout=PING_TIMEOUT)
    client.ping()
    return client


def docker_status() -> tuple[bool, str]:
    """Whether a Docker engine answers (within ~2 s), with a reason naming what was tried."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return False, (
            "the Python package 'docker' is not installed (pip install 'pytest-pgdr[docker]')"
        )
    try:
        client = _ping_client()
    except Exception as exc:
        return False, (
            f"docker.from_env().ping() failed with {docker_host_text()}:"
            f" {_short(exc)}. Start the Docker engine or point DOCKER_HOST at one"
        )
    version = client.api.api_version
    client.close()
    return True, f"Docker engine reachable with {docker_host_text()} (API {version})"


@functools.lru_cache(maxsize=1)
def docker_client() -> Any:
    """The process's docker SDK client (raises :class:`DockerError` when Docker is absent)."""
    import docker

    ok, reason = docker_status()
    if not ok:
        raise DockerError("Docker is not reachable", reason)
    probe = _ping_client()
    version = probe.api.api_version
    probe.close()
    return docker.from_env(version=version, timeout=API_TIMEOUT)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _testcontainers() -> Any:
    """testcontainers' core module, with Ryuk disabled (we reap our own containers)."""
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    from testcontainers.core import container
    from testcontainers.core.config import testcontainers_config

    testcontainers_config.ryuk_disabled = True
    return container


def _ignore_missing(action: Callable[[], object]) -> None:
    """Run a Docker call whose target may already be gone (not found, not running)."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        action()


# labels and orphans ---------------------------------------------------------------------
def owner_labels(run: RunDir | None = None) -> dict[str, str]:
    """Labels that let :func:`sweep_docker_orphans` tell when a container is left over."""
    labels = {
        LABEL_OWNER: str(os.getpid()),
        LABEL_OWNER_START: str(process_start_ticks(os.getpid())),
        LABEL_MACHINE: socket.gethostname(),
    }
    if run is not None:
        labels.update({LABEL_RUN: run.path.name, LABEL_RUNDIR: str(run.path)})
    return labels


def is_orphaned(labels: Mapping[str, str]) -> bool:
    """Left over by a pytest process on this machine that is gone (or whose run dir is)."""
    if labels.get(LABEL_MACHINE, socket.gethostname()) != socket.gethostname():
        return False  # another machine's (a shared engine): not ours to judge
    if labels.get(LABEL_RUNDIR):
        return not owner_alive(Path(labels[LABEL_RUNDIR]) / "owner")
    try:
        pid, ticks = int(labels[LABEL_OWNER]), int(labels[LABEL_OWNER_START])
    except (KeyError, ValueError):
        return False
    return process_start_ticks(pid) != ticks


def _remove_all(
    container_ids: Iterable[str], network_ids: Iterable[str], volume_names: Iterable[str] = ()
) -> None:
    """Force-remove containers in parallel, then the networks and volumes."""
    api = docker_client().api
    ids = list(container_ids)

    def remove(cid: str) -> None:
        _ignore_missing(lambda: api.remove_container(cid, force=True, v=True))

    def remove_network(net: str) -> None:
        _ignore_missing(lambda: api.remove_network(net))

    def remove_volume(name: str) -> None:
        _ignore_missing(lambda: api.remove_volume(name, force=True))

    if ids:
        with ThreadPoolExecutor(max_workers=min(len(ids), 8)) as pool:
            list(pool.map(remove, ids))
    for net in network_ids:
        remove_network(net)
    for volume in volume_names:
        remove_volume(volume)


def _labelled_volumes(selector: str) -> list[dict[str, Any]]:
    found = docker_client().api.volumes(filters={"label": selector}) or {}
    return list(found.get("Volumes") or [])


def _labelled(selector: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    api = docker_client().api
    flt = {"label": selector}
    return api.containers(all=True, filters=flt), api.networks(filters=flt)


def sweep_docker_orphans() -> list[str]:
    """Remove the containers and networks of pytest-pgdr runs whose owner is gone.

    Returns the names removed; quietly nothing when Docker is absent.
    """
    if not docker_status()[0]:
        return []
    containers, networks = _labelled(LABEL_OWNER)
    dead_c = [c for c in containers if is_orphaned(c.get("Labels") or {})]
    dead_n = [n for n in networks if is_orphaned(n.get("Labels") or {})]
    dead_v = [v for v in _labelled_volumes(LABEL_OWNER) if is_orphaned(v.get("Labels") or {})]
    _remove_all([c["Id"] for c in dead_c], [n["Id"] for n in dead_n], [v["Name"] for v in dead_v])
    return (
        [c["Names"][0].lstrip("/") for c in dead_c]
        + [n["Name"] for n in dead_n]
        + [v["Name"] for v in dead_v]
    )


def remove_run_containers(run_dir: Path) -> list[str]:
    """Remove every container and network of one run directory (its owner being gone)."""
    if not docker_status()[0]:
        return []
    containers, networks = _labelled(f"{LABEL_RUNDIR}={run_dir}")
    volumes = [v["Name"] for v in _labelled_volumes(f"{LABEL_RUNDIR}={run_dir}")]
    _remove_all([c["Id"] for c in containers], [n["Id"] for n in networks], volumes)
    return [c["Names"][0].lstrip("/") for c in containers] + [n["Name"] for n in networks] + volumes


# images ---------------------------------------------------------------------------------
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


def image_user(image: str) -> OsUser:
    """The image's ``postgres`` user, to run containers as and to own the bind-mounted files."""
    facts = probe_image(image)
    if facts.uid is None or facts.gid is None or facts.uid == 0:
        raise MissingBinaryError(
            f"The Docker image {image!r} has no unprivileged 'postgres' user",
            "servers run as the image's postgres uid:gid (PostgreSQL refuses root)",
            "Use an image with a postgres user (the official postgres:N images have one)",
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


# a server's container -------------------------------------------------------------------
def _exit_code(code: int) -> int:
    """Like Popen: a process killed by signal N gives -N (Docker reports 128 + N)."""
    return -(code - 128) if 128 < code <= 128 + 64 else code


class ContainerProcess:
    """A node's container, used like a ``subprocess.Popen`` of its postmaster (PID 1)."""

    pid = 1

    def __init__(self, api: Any, container_id: str, name: str, node: str) -> None:
        self.api = api
        self.container_id = container_id
        self.name = name
        self.node = node
        self.returncode: int | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        return f"<ContainerProcess {self.name} returncode={self.returncode}>"

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        import docker.errors

        try:
            state = self.api.inspect_container(self.container_id)["State"]
        except docker.errors.NotFound:
            self.returncode = -signal.SIGKILL  # removed underneath us
            return self.returncode
        if state.get("Running") or state.get("Status") in ("created", "restarting"):
            return None
        self.returncode = _exit_code(int(state.get("ExitCode", 0)))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; ``subprocess.TimeoutExpired`` if still running after ``timeout``."""
        try:
            poll(
                lambda: self.poll() is not None,
                f"container {self.name} to exit",
                LONG_WAIT if timeout is None else timeout,
                interval=0.01,
            )
        except WaitTimeout:
            raise subprocess.TimeoutExpired(self.name, timeout or LONG_WAIT) from None
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """``docker kill --signal`` to the postmaster; nothing if the container has stopped."""
        if self.returncode is None:
            _ignore_missing(lambda: self.api.kill(self.container_id, signal=int(sig)))

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def published_port(self) -> int:
        """The 127.0.0.1 port that Docker forwards to the server's 5432."""
        if self._port is None:
            bindings = self.api.port(self.container_id, SERVER_PORT) or []
            if not bindings:
                raise DockerError(
                    f"Container {self.name} publishes no port {SERVER_PORT}",
                    "it has stopped or was started without publishing",
                    "Start the node again",
                )
            self._port = int(bindings[0]["HostPort"])
        return self._port


# the host -------------------------------------------------------------------------------
def _port_taken(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "already allocated" in text or "address already in use" in text


def _start(box: Any) -> str:
    """Start a testcontainers container; its id (its own client is closed: we use ours)."""
    try:
        return str(box.start().get_container_id())
    finally:
        box.get_docker_client().client.close()


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", text).strip("_.-")[:40] or "t"


def _node_name(argv: Sequence[str], log_path: Path) -> str:
    """The node's directory name: the parent of ``-D <datadir>``, else of the log file."""
    args = list(argv)
    if "-D" in args[:-1]:
        return Path(args[args.index("-D") + 1]).parent.name
    return log_path.parent.name


class DockerHost(LocalHost):
    """The nodes of one topology, each in its own container on a private network.

    File operations stay local (``root`` is bind-mounted at the same path everywhere).
    """

    kind = "docker"
    client_address = "127.0.0.1"

    def __init__(self, user: OsUser, run: RunDir, image: str, root: Path, label: str) -> None:
        super().__init__(user, run)
        self.image = image
        self.root = root
        self.prefix = f"pgdr-{run.path.name.removeprefix(RUN_PREFIX)}-{_slug(label)}"
        self.labels = {**owner_labels(run), LABEL_HOST: self.prefix}
        self.api = docker_client().api
        _image_attrs(image)  # fails clearly (never pulls) when the image is missing
        self.processes: dict[str, ContainerProcess] = {}
        self._published: dict[int, str] = {}
        self._ports: dict[str, int] = {}
        self.wal_limits: dict[str, WalLimit] = {}
        self._closed = False
        self.make_dir(root, 0o711)
        self.network = self._create_network()
        try:
            self.toolbox_id = self._start_toolbox()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<DockerHost {self.prefix} {self.image} nodes={sorted(self.processes)}>"

    # docker objects ---------------------------------------------------------------------
    def _client_kw(self) -> dict[str, Any]:
        return {"version": self.api.api_version, "timeout": API_TIMEOUT}

    def _create_network(self) -> Any:
        from testcontainers.core.network import Network

        _testcontainers()
        network = Network(
            docker_client_kw=self._client_kw(),
            docker_network_kw={"labels": self.labels, "driver": "bridge"},
        )
        network.name = self.prefix
        return network.create()

    def _container(
        self,
        name: str,
        entrypoint: list[str],
        command: list[str],
        role: str,
        alias: str,
        wal: WalLimit | None = None,
    ) -> Any:
        """A testcontainers DockerContainer on this host's network, mounts, user and labels
        (with ``wal``, the node's WAL tmpfs volume too)."""
        tc = _testcontainers()
        volumes = [(str(self.root), str(self.root), "rw")]
        if wal is not None:
            volumes.append((wal.volume, str(wal.mount), "rw"))
        return tc.DockerContainer(
            self.image,
            docker_client_kw=self._client_kw(),
            command=command,
            name=name,
            network=self.network,
            network_aliases=[alias],
            volumes=volumes,
            entrypoint=entrypoint,
            user=f"{self.user.uid}:{self.user.gid}",
            labels={**self.labels, LABEL_ROLE: role, LABEL_NODE: alias},
            shm_size=SHM_SIZE,
            working_dir="/",
            env=self.base_env(),
        )

    def _start_toolbox(self) -> str:
        box = self._container(
            f"{self.prefix}-toolbox", ["sleep"], ["infinity"], "toolbox", "toolbox"
        )
        return _start(box)

    # servers ----------------------------------------------------------------------------
    def spawn_server(  # type: ignore[override]  # returns a Popen look-alike
        self, argv: Sequence[str], log_path: Path, host_port: int = 0
    ) -> ContainerProcess:
        """Start the node's container: ``argv`` as PID 1, output appended to ``log_path``.

        The server's 5432 is published on 127.0.0.1 at ``host_port``, else at a port claimed
        once per node and kept across restarts and partitions.
        """
        node = _node_name(argv, log_path)
        name = f"{self.prefix}-{node}"
        self._forget(node)
        _ignore_missing(lambda: self.api.remove_container(name, force=True))
        self._clear_stale_pidfile(argv)
        for attempt in (1, 2, 3):
            port = host_port or self._node_port(node)
            try:
                container_id = self._start_server(name, node, argv, log_path, port)
                break
            except Exception as exc:
                _ignore_missing(lambda: self.api.remove_container(name, force=True))
                if host_port or attempt == 3 or not _port_taken(exc):
                    raise DockerError(
                        f"Docker could not start node {node} ({name})",
                        _short(exc),
                        "Check 'docker info' and free ports",
                    ) from None
                self.run_dir.release_port(self._ports.pop(node))  # taken meanwhile: re-claim
        proc = ContainerProcess(self.api, container_id, name, node)
        self.processes[node] = proc
        self._published[port] = node
        return proc

    def _start_server(
        self, name: str, node: str, argv: Sequence[str], log_path: Path, port: int
    ) -> str:
        script = f'exec "$@" >> {shlex.quote(str(log_path))} 2>&1'
        box = self._container(
            name,
            ["sh", "-c", script, "sh"],
            [str(a) for a in argv],
            "server",
            node,
            self.wal_limits.get(node),
        )
        box.ports = {f"{SERVER_PORT}/tcp": ("127.0.0.1", port)}
        return _start(box)

    def _node_port(self, node: str) -> int:
        if node not in self._ports:
            self._ports[node] = self.run_dir.claim_port()
        return self._ports[node]

    def _forget(self, node: str) -> None:
        self.processes.pop(node, None)
        for port in [p for p, n in self._published.items() if n == node]:
            del self._published[port]

    @staticmethod
    def _clear_stale_pidfile(argv: Sequence[str]) -> None:
        """Every containerised postmaster is PID 1, so a crashed one's postmaster.pid would
        look like the new server's until it is rewritten: remove it (its container is gone)."""
        args = list(argv)
        if "-D" not in args[:-1]:
            return
        pidfile = Path(args[args.index("-D") + 1]) / "postmaster.pid"
        with contextlib.suppress(OSError, IndexError):
            if pidfile.read_text().split("\n", 1)[0].strip() == "1":
                pidfile.unlink()

    def server_port(self, node_name: str, client_port: int = 0) -> int:
        return SERVER_PORT

    def client_port(self, proc: ContainerProcess) -> int:
        return proc.published_port()

    def peer_address(self, node_name: str) -> str:
        return node_name

    def listen_addresses(self) -> str:
        return "*"

    def hba_lines(self) -> str:
        return (
            "# pytest-pgdr (docker): private sockets trusted, the topology network needs"
            " a password\n"
            "local   all             all                                     trust\n"
            "local   replication     all                                     trust\n"
            "host    all             all             127.0.0.1/32            scram-sha-256\n"
            "host    replication     all             127.0.0.1/32            scram-sha-256\n"
            "host    all             all             samenet                 scram-sha-256\n"
            "host    replication     all             samenet                 scram-sha-256\n"
        )

    # a size-limited pg_wal ----------------------------------------------------------------
    def limit_wal(self, node: str, datadir: Path, size: str) -> WalLimit:
        """Move ``node``'s ``pg_wal`` onto a tmpfs of ``size`` (``96m``, ``1g``...).

        The tmpfs is a Docker volume mounted at ``<node dir>/walfs`` in the node's containers
        (``pg_wal`` becomes a symbolic link to ``walfs/pg_wal``: the same path inside and out,
        though this machine sees only an empty mount point). A ``<node>-wal`` container keeps
        it mounted, so the WAL survives the node's container being replaced; the node must
        not be running yet. The existing WAL is moved onto it.
        """
        if not WAL_SIZE_RX.match(size.strip().lower()):
            raise PgdrError(
                f"Bad WAL limit {size!r} for {node}", "it is a size such as 64m, 96m or 1g"
            )
        if node in self.processes and self.processes[node].poll() is None:
            raise PgdrError(
                f"Cannot limit the WAL of {node} while it runs",
                "the tmpfs is chosen when its container is created",
                "Give wal_limit= when creating the node",
            )
        if node in self.wal_limits:
            return self.wal_limits[node]
        mount = self.make_dir(datadir.parent / WAL_FS)
        volume = f"{self.prefix}-{node}-wal"
        options = f"size={size.strip().lower()},uid={self.user.uid},gid={self.user.gid},mode=0700"
        self.api.create_volume(
            volume,
            driver="local",
            driver_opts={"type": "tmpfs", "device": "tmpfs", "o": options},
            labels={**self.labels, LABEL_ROLE: "wal", LABEL_NODE: node},
        )
        limit = WalLimit(node, volume, mount, size.strip().lower(), "")
        holder = self._container(
            f"{self.prefix}-{node}-wal", ["sleep"], ["infinity"], "wal", f"{node}-wal", limit
        )
        limit = self.wal_limits[node] = WalLimit(node, volume, mount, limit.size, _start(holder))
        pg_wal, target = datadir / "pg_wal", mount / "pg_wal"
        self._exec_checked(
            limit.holder,
            (
                f"[ -L {_q(pg_wal)} ] || {{ mkdir {_q(target)}"
                f" && cp -a {_q(pg_wal)}/. {_q(target)}/"
                f" && rm -rf {_q(pg_wal)} && ln -s {_q(target)} {_q(pg_wal)}; }}"
            ),
            f"move the WAL of {node} onto its tmpfs",
        )
        return limit

    def wal_space(self, node: str) -> tuple[int, int]:
        """(size, free bytes) of ``node``'s WAL tmpfs."""
        limit = self._wal_limit(node)
        out = self._exec_checked(
            limit.holder,
            f"df -P -B1 {_q(limit.mount)} | tail -n 1",
            f"read the free space of {node}'s WAL tmpfs",
        )
        fields = out.split()
        return int(fields[1]), int(fields[3])

    def fill_wal(self, node: str) -> int:
        """Fill ``node``'s WAL tmpfs to the last byte with a filler file; its size."""
        limit = self._wal_limit(node)
        filler = limit.mount / WAL_FILLER
        self._exec_checked(
            limit.holder,
            f"dd if=/dev/zero of={_q(filler)} bs=1M 2>/dev/null;"
            f" dd if=/dev/zero of={_q(filler)} bs=4k oflag=append conv=notrunc"
            " 2>/dev/null; true",
            f"fill the WAL tmpfs of {node}",
        )
        size, free = self.wal_space(node)
        if free >= FULL_SLACK:
            raise DockerError(
                f"The WAL tmpfs of {node} did not fill up",
                f"{free} of {size} bytes are still free after writing the filler",
            )
        out = self._exec_checked(limit.holder, f"stat -c %s {_q(filler)}", "size the filler")
        return int(out.strip())

    def relieve_wal(self, node: str) -> None:
        """Remove the filler from ``node``'s WAL tmpfs."""
        limit = self._wal_limit(node)
        self._exec_checked(
            limit.holder,
            f"rm -f {_q(limit.mount / WAL_FILLER)}",
            f"remove the filler from the WAL tmpfs of {node}",
        )

    def _wal_limit(self, node: str) -> WalLimit:
        if node not in self.wal_limits:
            raise PgdrError(
                f"Node {node} has no size-limited pg_wal",
                "a full disk is injected into the tmpfs chosen at its creation",
                "Create it with wal_limit=, e.g. pgdr.primary(wal_limit='96m')",
            )
        return self.wal_limits[node]

    def _exec_checked(self, container_id: str, script: str, what: str) -> str:
        """Run a shell script in one of this host's containers; its output, or DockerError."""
        import docker.errors

        try:
            exec_id = self.api.exec_create(container_id, ["sh", "-c", script])["Id"]
            output = self.api.exec_start(exec_id).decode("utf-8", "replace")
            code = self.api.exec_inspect(exec_id)["ExitCode"]
        except docker.errors.APIError as exc:
            raise DockerError(f"Docker could not {what}", _short(exc)) from None
        if code != 0:
            raise DockerError(f"Could not {what} (exit code {code})", output.strip()[-300:])
        return str(output)

    # signals and faults -----------------------------------------------------------------
    def signal(self, proc: Any, sig: int, group: bool = False) -> None:
        """Signal the postmaster; with ``group``, every process of the container."""
        if group and sig == signal.SIGKILL:
            self.kill_group(proc)
            return
        proc.send_signal(sig)
        if group and proc.returncode is None:
            _ignore_missing(lambda: self._kill_all(proc, sig))

    def _kill_all(self, proc: ContainerProcess, sig: int) -> None:
        # the shell's built-in kill (images may lack /bin/kill); -1: all but PID 1 and itself
        exec_id = self.api.exec_create(proc.container_id, ["sh", "-c", f"kill -{int(sig)} -1"])
        self.api.exec_start(exec_id["Id"])

    def kill_group(self, proc: Any) -> None:
        """SIGKILL the whole container at once (a power loss)."""
        proc.send_signal(signal.SIGKILL)

    def freeze(self, proc: ContainerProcess) -> None:
        """Stop every process of the node (``docker pause``, the cgroup freezer)."""
        self._act(proc, "freeze", lambda: self.api.pause(proc.container_id))

    def thaw(self, proc: ContainerProcess) -> None:
        _ignore_missing(lambda: self.api.unpause(proc.container_id))

    def disconnect(self, proc: ContainerProcess) -> None:
        """Cut the node off the topology network (its published port goes dark too)."""
        self._act(
            proc,
            "disconnect",
            lambda: self.api.disconnect_container_from_network(
                proc.container_id, self.network.id, force=True
            ),
        )

    def reconnect(self, proc: ContainerProcess) -> None:
        """Join the network again under the node's alias (same published port)."""
        self._act(
            proc,
            "reconnect",
            lambda: self.api.connect_container_to_network(
                proc.container_id, self.network.id, aliases=[proc.node]
            ),
        )

    @staticmethod
    def _act(proc: ContainerProcess, what: str, action: Callable[[], object]) -> None:
        import docker.errors

        try:
            action()
        except docker.errors.APIError as exc:
            raise DockerError(
                f"Cannot {what} node {proc.node} (container {proc.name})",
                _short(exc),
                "Check that the node is running",
            ) from None

    # client programs --------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        """The container's own PATH stays; nothing else leaks in from this machine."""
        return {"LC_ALL": "C", "HOME": str(self.root), "PGAPPNAME": "pytest-pgdr"}

    def route(self, env: Mapping[str, str]) -> dict[str, str]:
        """PGHOST/PGPORT aimed at a node's published port become its alias and 5432, as
        seen from the toolbox container."""
        routed = dict(env)
        node = self._published.get(int(env.get("PGPORT", "0") or 0))
        if env.get("PGHOST") == self.client_address and node is not None:
            routed.update(PGHOST=self.peer_address(node), PGPORT=str(SERVER_PORT))
        return routed

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a program in the toolbox container (``docker exec``), capturing its output."""
        import docker.errors

        args = [str(a) for a in argv]
        environment = self.route({**self.base_env(), **(env or {})})
        try:
            exec_id = self.api.exec_create(
                self.toolbox_id, args, stdin=input is not None, environment=environment, workdir="/"
            )["Id"]
        except docker.errors.NotFound:
            raise DockerError(
                f"The toolbox container of {self.prefix} is gone",
                "it was removed while the topology was in use",
                "Check that nothing else removes pytest-pgdr containers",
            ) from None
        out, err = self._stream(exec_id, args, input, timeout)
        return subprocess.CompletedProcess(args, self._exec_exit(exec_id), out, err)

    def _stream(
        self, exec_id: str, args: list[str], input: str | None, timeout: float | None
    ) -> tuple[str, str]:
        sock = self.api.exec_start(exec_id, socket=True)
        raw: socket.socket = getattr(sock, "_sock", sock)
        deadline = None if timeout is None else time.monotonic() + timeout
        writer = _feed(raw, input) if input is not None else None
        try:
            chunks = _read_frames(raw, deadline)
        except subprocess.TimeoutExpired:
            self._kill_exec(exec_id)
            raise subprocess.TimeoutExpired(args, timeout or 0.0) from None
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            if writer is not None:
                writer.join(timeout=5)
        return (
            b"".join(chunks[1]).decode("utf-8", "replace"),
            b"".join(chunks[2]).decode("utf-8", "replace"),
        )

    def _exec_exit(self, exec_id: str) -> int:
        def finished() -> dict[str, Any] | None:
            info: dict[str, Any] = self.api.exec_inspect(exec_id)
            return None if info["Running"] else info

        info = poll(finished, "docker exec to report its exit code", 30, interval=0.002)
        return int(info["ExitCode"] if info["ExitCode"] is not None else -1)

    def _kill_exec(self, exec_id: str) -> None:
        """SIGKILL an exec'd program through its host PID (the engine runs on this machine)."""
        with contextlib.suppress(Exception):
            pid = int(self.api.exec_inspect(exec_id).get("Pid") or 0)
            if pid > 1:
                os.kill(pid, signal.SIGKILL)

    # teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        """Remove every container and the network of this host (SIGKILL, no grace)."""
        if self._closed:
            return
        self._closed = True
        containers, networks = _labelled(f"{LABEL_HOST}={self.prefix}")
        volumes = [v["Name"] for v in _labelled_volumes(f"{LABEL_HOST}={self.prefix}")]
        _remove_all([c["Id"] for c in containers], [n["Id"] for n in networks], volumes)
        self.wal_limits.clear()
        for proc in self.processes.values():
            proc.poll()
        for port in self._ports.values():
            self.run_dir.release_port(port)
        self._ports.clear()
        self._published.clear()
        with contextlib.suppress(Exception):
            self.network._docker.client.close()


@dataclass(frozen=True)
class WalLimit:
    """A node's size-limited pg_wal: the tmpfs volume, its mount point, the holder container."""

    node: str
    volume: str
    mount: Path
    size: str
    holder: str


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def _feed(raw: socket.socket, text: str) -> threading.Thread:
    """Write stdin in a thread (so a large input never blocks reading), then half-close."""

    def write() -> None:
        with contextlib.suppress(OSError):
            raw.sendall(text.encode())
            raw.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _read_frames(raw: socket.socket, deadline: float | None) -> dict[int, list[bytes]]:
    """Demultiplex Docker's stream (8-byte headers: stream 1/2, big-endian size) until EOF."""
    chunks: dict[int, list[bytes]] = {1: [], 2: []}
    buf = b""
    while True:
        wait = None if deadline is None else max(deadline - time.monotonic(), 0)
        ready, _, _ = select.select([raw], [], [], wait)
        if not ready:
            raise subprocess.TimeoutExpired("docker exec", wait or 0.0)
        data = raw.recv(65536)
        if not data:
            return chunks
        buf += data
        while len(buf) >= 8 and len(buf) >= 8 + int.from_bytes(buf[4:8], "big"):
            size = int.from_bytes(buf[4:8], "big")
            chunks.setdefault(buf[0], []).append(buf[8 : 8 + size])
            buf = buf[8 + size :]
