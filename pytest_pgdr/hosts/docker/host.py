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
  tmpfs volume (see :mod:`~pytest_pgdr.hosts.docker.wal`).
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_pgdr.hosts.base import FREEZE, LOCAL_FILES, PARTITION, WAL_LIMIT, ServerProcess
from pytest_pgdr.hosts.docker.engine import (
    API_TIMEOUT,
    DockerError,
    _ignore_missing,
    _short,
    _testcontainers,
    docker_client,
    start_box,
)
from pytest_pgdr.hosts.docker.labels import (
    LABEL_HOST,
    LABEL_NODE,
    LABEL_ROLE,
    _labelled,
    _labelled_volumes,
    _remove_all,
    owner_labels,
)
from pytest_pgdr.hosts.docker.names import DOCKER_HBA, _node_name, _port_taken, _slug
from pytest_pgdr.hosts.docker.probe import _image_attrs
from pytest_pgdr.hosts.docker.process import SERVER_PORT, ContainerProcess, container_of
from pytest_pgdr.hosts.docker.shared import check_engine_sees
from pytest_pgdr.hosts.docker.toolbox import Toolbox
from pytest_pgdr.hosts.docker.wal import WalLimit, WalLimits
from pytest_pgdr.hosts.files import LocalFiles
from pytest_pgdr.hosts.osuser import OsUser
from pytest_pgdr.hosts.rundir import RunDir
from pytest_pgdr.hosts.sweep import RUN_PREFIX

SHM_SIZE = "256m"
REAP_GRACE = 0.5  # after SIGQUIT, before the container is killed whole
KILL_WAIT = 30.0  # for Docker to report a killed container stopped


class DockerHost(LocalFiles, WalLimits):
    """The nodes of one topology, each in its own container on a private network.

    File operations stay local (``root`` is bind-mounted at the same path everywhere).
    """

    kind = "docker"  # descriptive only: callers check capabilities
    capabilities = frozenset({FREEZE, PARTITION, WAL_LIMIT, LOCAL_FILES})
    client_address = "127.0.0.1"

    def __init__(self, user: OsUser, run: RunDir, image: str, root: Path, label: str) -> None:
        super().__init__(user)
        self.run_dir = run
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
        self._prepare_root()
        self.network = self._create_network()
        try:
            self.toolbox_id = self._start_toolbox()
            self.toolbox = Toolbox(self.api, self.toolbox_id, self.prefix)
            self._check_root()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<DockerHost {self.prefix} {self.image} nodes={sorted(self.processes)}>"

    # the root directory: this machine's, bind-mounted ------------------------------------
    def _prepare_root(self) -> None:
        self.make_dir(self.root, 0o711)

    def _mounts(self) -> list[tuple[str, str, str]]:
        return [(str(self.root), str(self.root), "rw")]

    def _check_root(self) -> None:
        check_engine_sees(self.root, self._toolbox_output)

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
        volumes = self._mounts()
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

    def _toolbox_output(self, argv: list[str]) -> str:
        proc = self.toolbox.run(argv, {})
        return proc.stdout or proc.stderr

    def _start_toolbox(self) -> str:
        box = self._container(
            f"{self.prefix}-toolbox", ["sleep"], ["infinity"], "toolbox", "toolbox"
        )
        return start_box(box)

    # servers ----------------------------------------------------------------------------
    def spawn_server(
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
        box.ports = {f"{SERVER_PORT}/tcp": (self.client_address, port)}
        return start_box(box)

    def _node_port(self, node: str) -> int:
        if node not in self._ports:
            self._ports[node] = self.run_dir.claim_port()
        return self._ports[node]

    def _forget(self, node: str) -> None:
        self.processes.pop(node, None)
        for port in [p for p, n in self._published.items() if n == node]:
            del self._published[port]

    def _clear_stale_pidfile(self, argv: Sequence[str]) -> None:
        """Every containerised postmaster is PID 1, so a crashed one's postmaster.pid would
        look like the new server's until it is rewritten: remove it (its container is gone)."""
        args = list(argv)
        if "-D" not in args[:-1]:
            return
        pidfile = Path(args[args.index("-D") + 1]) / "postmaster.pid"
        with contextlib.suppress(OSError, IndexError):
            if self.read_text(pidfile).split("\n", 1)[0].strip() == "1":
                self.remove_file(pidfile)

    def server_port(self, node_name: str, client_port: int = 0) -> int:
        return SERVER_PORT

    def client_port(self, proc: ServerProcess) -> int:
        return container_of(proc).published_port()

    def peer_address(self, node_name: str) -> str:
        return node_name

    def listen_addresses(self) -> str:
        return "*"

    def hba_lines(self) -> str:
        return DOCKER_HBA

    # signals and faults -----------------------------------------------------------------
    def signal(self, proc: ServerProcess, sig: int, group: bool = False) -> None:
        """Signal the postmaster; with ``group``, every process of the container."""
        box = container_of(proc)
        if group and sig == signal.SIGKILL:
            self.kill_group(box)
            return
        box.send_signal(sig)
        if group and box.returncode is None:
            _ignore_missing(lambda: self._kill_all(box, sig))

    def _kill_all(self, proc: ContainerProcess, sig: int) -> None:
        # the shell's built-in kill (images may lack /bin/kill); -1: all but PID 1 and itself
        exec_id = self.api.exec_create(proc.container_id, ["sh", "-c", f"kill -{int(sig)} -1"])
        self.api.exec_start(exec_id["Id"])

    def kill_group(self, proc: ServerProcess) -> None:
        """SIGKILL the whole container at once (a power loss)."""
        container_of(proc).send_signal(signal.SIGKILL)

    def reap(self, proc: ServerProcess) -> None:
        """Wait briefly for a postmaster sent SIGQUIT, then kill its container whole (the
        container and everything else of this host are removed by :meth:`close`)."""
        box = container_of(proc)
        try:
            box.wait(timeout=REAP_GRACE)
            return
        except subprocess.TimeoutExpired:
            self.kill_group(box)
        with contextlib.suppress(subprocess.TimeoutExpired):
            box.wait(timeout=KILL_WAIT)

    def freeze(self, proc: ServerProcess) -> None:
        """Stop every process of the node (``docker pause``, the cgroup freezer)."""
        box = container_of(proc)
        self._act(box, "freeze", lambda: self.api.pause(box.container_id))

    def thaw(self, proc: ServerProcess) -> None:
        box = container_of(proc)
        _ignore_missing(lambda: self.api.unpause(box.container_id))

    def disconnect(self, proc: ServerProcess) -> None:
        """Cut the node off the topology network (its published port goes dark too)."""
        box = container_of(proc)
        self._act(
            box,
            "disconnect",
            lambda: self.api.disconnect_container_from_network(
                box.container_id, self.network.id, force=True
            ),
        )

    def reconnect(self, proc: ServerProcess) -> None:
        """Join the network again under the node's alias (same published port)."""
        box = container_of(proc)
        self._act(
            box,
            "reconnect",
            lambda: self.api.connect_container_to_network(
                box.container_id, self.network.id, aliases=[box.node]
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
        environment = self.route({**self.base_env(), **(env or {})})
        return self.toolbox.run([str(a) for a in argv], environment, input, timeout)

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
