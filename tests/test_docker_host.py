"""The Docker backend against the local images: servers in containers, tools via docker exec,
faults, and the reaping of what a killed run leaves behind."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from pytest_pgdr.hosts.docker import docker_status

_OK, _REASON = docker_status()
if not _OK:
    pytest.skip(_REASON, allow_module_level=True)

from pytest_pgdr import faults  # noqa: E402
from pytest_pgdr.basics.errors import MissingBinaryError, VersionSkip  # noqa: E402
from pytest_pgdr.basics.wait import poll  # noqa: E402
from pytest_pgdr.hosts.docker import (  # noqa: E402
    LABEL_HOST,
    LABEL_MACHINE,
    LABEL_RUNDIR,
    ContainerProcess,
    DockerHost,
    docker_client,
    image_installation,
    image_user,
    is_orphaned,
    owner_labels,
    remove_run_containers,
    sweep_docker_orphans,
)
from pytest_pgdr.hosts.files import this_machine  # noqa: E402
from pytest_pgdr.hosts.install import Installation  # noqa: E402
from pytest_pgdr.hosts.runtime import RunDir  # noqa: E402

PG15 = "pytest-pgdr/pg15:latest"
PG18 = "pytest-pgdr/pg18:latest"
PASSWORD = "docker-test-secret"


@dataclass
class Server:
    host: DockerHost
    inst: Installation
    root: Path
    proc: ContainerProcess

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def connect(self, **kw: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.proc.published_port(),
            user="postgres",
            password=PASSWORD,
            dbname="postgres",
            autocommit=True,
            **{"connect_timeout": 5, **kw},
        )

    def psql(self, sql: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.host.run(
            [str(self.inst.tool("psql")), "-X", "-At", *args, "-c", sql],
            env={
                "PGUSER": "postgres",
                "PGDATABASE": "postgres",
                "PGPASSWORD": PASSWORD,
                "PGCONNECT_TIMEOUT": "2",
            },
        )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunDir]:
    rundir = RunDir(tmp_path_factory.mktemp("docker"))
    yield rundir
    rundir.close()


@pytest.fixture(scope="module")
def inst15() -> Installation:
    return image_installation(PG15)


@pytest.fixture(scope="module")
def host(run: RunDir) -> Iterator[DockerHost]:
    dhost = DockerHost(image_user(PG15), run, PG15, run.path / "1_docker", "test")
    yield dhost
    dhost.close()


def _stand_in(**attrs: Any) -> Any:
    """A duck-typed node or topology (faults only use a few attributes)."""
    return SimpleNamespace(**attrs)


def _answers(port: int, wait: float = 0.5) -> bool:
    """Whether a live postmaster answers an SSLRequest on ``port`` (fast, unlike libpq's
    minimum 2 s connect_timeout)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
            conn.sendall(struct.pack("!ii", 8, 80877103))
            return conn.recv(1) in (b"N", b"S")
    except OSError:
        return False


def _ready(datadir: Path) -> bool:
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return False
    return len(lines) > 7 and lines[0] == "1" and lines[7].strip() == "ready"


def _spawn(host: DockerHost, inst: Installation, root: Path) -> ContainerProcess:
    proc = host.spawn_server(
        [str(inst.tool("postgres")), "-D", str(root / "data")], root / "postgres.log"
    )
    poll(lambda: _ready(root / "data") or proc.poll() is not None, "postgres to be ready", 60)
    assert proc.poll() is None, (root / "postgres.log").read_text()
    return proc


@pytest.fixture(scope="module")
def server(host: DockerHost, inst15: Installation) -> Server:
    root = host.make_dir(host.root / "n1")
    host.make_dir(root / "sock")
    init = host.run(
        [
            str(inst15.tool("initdb")),
            "-D",
            str(root / "data"),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ]
    )
    assert init.returncode == 0, init.stderr
    host.write_file(root / "data" / "pg_hba.conf", host.hba_lines())
    host.write_file(
        root / "data" / "pgdr.conf",
        f"listen_addresses = '{host.listen_addresses()}'\n"
        f"port = {host.server_port('n1')}\n"
        f"unix_socket_directories = '{root / 'sock'}'\n",
    )
    with open(root / "data" / "postgresql.conf", "a") as fh:
        fh.write("include_if_exists = 'pgdr.conf'\n")
    started = time.monotonic()
    proc = _spawn(host, inst15, root)
    print(f"\ncontainer spawn to ready: {time.monotonic() - started:.2f} s")
    sock = host.run(
        [
            str(inst15.tool("psql")),
            "-X",
            "-h",
            str(root / "sock"),
            "-U",
            "postgres",
            "-c",
            f"ALTER USER postgres PASSWORD '{PASSWORD}'",
        ]
    )
    assert sock.returncode == 0, sock.stderr
    return Server(host, inst15, root, proc)


# images ---------------------------------------------------------------------------------
def test_unknown_image_fails_fast_without_pulling() -> None:
    started = time.monotonic()
    with pytest.raises(MissingBinaryError) as info:
        image_installation("pytest-pgdr/no-such-image:never")
    assert time.monotonic() - started < 5
    assert "is not on this machine" in str(info.value)
    assert "python -m pytest_pgdr.hosts.images build" in str(info.value)


@pytest.mark.parametrize(("image", "major"), [(PG15, 15), (PG18, 18)])
def test_image_installation(image: str, major: int) -> None:
    inst = image_installation(image)
    assert inst.major == major and inst.version.startswith(f"{major}.")
    assert inst.image == image and inst.source == f"docker {image}" and inst.spec == image
    assert inst.tool("psql") == inst.bindir / "psql" and inst.has_tool("initdb")
    assert not inst.has_tool("no_such_program")
    with pytest.raises(MissingBinaryError):
        inst.tool("no_such_program")
    user = image_user(image)
    label = docker_client().images.get(PG15).labels["org.pytest-pgdr.postgres-uid"]
    assert (user.uid, user.gid) == (int(label), int(label)) and not user.is_current


# client programs ------------------------------------------------------------------------
def test_run_in_toolbox_with_stdin_stderr_and_exit_code(host: DockerHost) -> None:
    started = time.monotonic()
    proc = host.run(
        ["sh", "-c", 'cat; echo "$HOME $LC_ALL"; id -u; echo oops >&2; exit 3'],
        input="hello\n" * 20000,
    )
    assert time.monotonic() - started < 5
    lines = proc.stdout.splitlines()
    assert lines[:20000] == ["hello"] * 20000
    assert lines[20000:] == [f"{host.root} C", str(host.user.uid)]
    assert (proc.stderr, proc.returncode) == ("oops\n", 3)


def test_run_timeout_kills_the_program(host: DockerHost) -> None:
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        host.run(["sleep", "30"], timeout=0.5)
    assert time.monotonic() - started < 3
    left = host.run(["sh", "-c", "cat /proc/[0-9]*/cmdline"])
    assert "sleep\x0030" not in left.stdout and "sleep\x00infinity" in left.stdout


def test_missing_program_is_an_exit_code(host: DockerHost) -> None:
    proc = host.run(["/no/such/program"])
    assert proc.returncode != 0 and "no such file" in (proc.stdout + proc.stderr).lower()


# servers --------------------------------------------------------------------------------
def test_server_in_container_accepts_tcp_and_tools(server: Server) -> None:
    assert _answers(server.proc.published_port())
    with server.connect() as conn:
        assert conn.execute("SELECT current_setting('port')").fetchone() == ("5432",)
    routed = server.host.run(
        [str(server.inst.tool("psql")), "-X", "-At", "-c", "SELECT 7"],
        env={
            "PGHOST": "127.0.0.1",
            "PGPORT": str(server.proc.published_port()),
            "PGUSER": "postgres",
            "PGPASSWORD": PASSWORD,
        },
    )
    assert (routed.returncode, routed.stdout) == (0, "7\n"), routed.stderr
    assert server.psql("SELECT 1", "-h", "n1").stdout == "1\n"
    assert server.proc.pid == 1 and server.proc.poll() is None


def test_freeze_and_thaw(server: Server) -> None:
    fault = faults.freeze(_stand_in(name="n1", host=server.host, proc=server.proc))
    fault.start()
    try:
        assert server.host.api.inspect_container(server.proc.container_id)["State"]["Paused"]
        assert server.proc.poll() is None
        assert not _answers(server.proc.published_port())
    finally:
        fault.stop()
    assert not server.host.api.inspect_container(server.proc.container_id)["State"]["Paused"]
    with server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_partition_and_reconnect_keep_alias_and_port(server: Server) -> None:
    port = server.proc.published_port()
    node = _stand_in(name="n1", host=server.host, proc=server.proc)
    with faults.partition(node):
        assert server.psql("SELECT 1", "-h", "n1").returncode != 0
        assert not _answers(port)
    assert _answers(port)
    assert server.psql("SELECT 1", "-h", "n1").stdout == "1\n"
    assert server.proc.published_port() == port
    with server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_crash_then_restart_recovers(server: Server) -> None:
    with server.connect() as conn:
        conn.execute("CREATE TABLE t AS SELECT generate_series(1, 100) AS i")
    server.host.kill_group(server.proc)
    assert server.proc.wait(timeout=30) == -9 and server.proc.poll() == -9
    offset = server.log.stat().st_size
    server.proc = _spawn(server.host, server.inst, server.root)  # replaces the dead container
    with server.connect() as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (100,)
    assert "not properly shut down" in server.log.read_text()[offset:]


def test_fast_stop_exit_code(host: DockerHost, server: Server) -> None:
    host.signal(server.proc, 2)  # SIGINT: fast shutdown
    assert server.proc.wait(timeout=30) == 0
    server.proc = _spawn(host, server.inst, server.root)


# teardown and reaping -------------------------------------------------------------------
def _leftovers(selector: str) -> list[str]:
    api = docker_client().api
    flt = {"label": selector}
    return [c["Names"][0] for c in api.containers(all=True, filters=flt)] + [
        n["Name"] for n in api.networks(filters=flt)
    ]


def test_reap_kills_a_container_that_ignores_sigquit(run: RunDir) -> None:
    other = DockerHost(image_user(PG15), run, PG15, run.path / "3_reap", "reap")
    try:
        root = other.make_dir(other.root / "a")
        proc = other.spawn_server(  # PID 1 without a handler ignores SIGQUIT
            ["sh", "-c", "echo up; exec sleep 100", "sh", "-D", str(root / "data")], root / "log"
        )
        poll(lambda: (root / "log").exists() and "up" in (root / "log").read_text(), "up", 30)
        other.signal(proc, signal.SIGQUIT)
        other.reap(proc)
        assert proc.poll() == -signal.SIGKILL
    finally:
        other.close()
    assert _leftovers(f"{LABEL_HOST}={other.prefix}") == []


def test_group_signal_and_close_removes_everything(run: RunDir) -> None:
    other = DockerHost(image_user(PG15), run, PG15, run.path / "2_close", "close")
    root = other.make_dir(other.root / "a")
    proc = other.spawn_server(
        ["sh", "-c", "sleep 100 & wait", "sh", "-D", str(root / "data")], root / "log"
    )
    other.signal(proc, 15)  # PID 1 without a handler ignores it ...
    assert proc.poll() is None
    other.signal(proc, 15, group=True)  # ... but not its children: 'wait' returns
    assert proc.wait(timeout=10) == 0
    assert len(_leftovers(f"{LABEL_HOST}={other.prefix}")) == 3
    started = time.monotonic()
    other.close()
    print(f"\nclose of 2 containers + network: {time.monotonic() - started:.2f} s")
    assert _leftovers(f"{LABEL_HOST}={other.prefix}") == []
    other.close()  # idempotent


def test_sweep_removes_leftovers_of_dead_owners(run: RunDir, tmp_path: Path) -> None:
    client = docker_client()
    gone = tmp_path / "pgdr-run-gone"
    dead = {**owner_labels(run), LABEL_RUNDIR: str(gone)}
    live_run = RunDir(tmp_path)  # owned by this (live) process
    alive = owner_labels(live_run)
    net = client.networks.create("pgdr-test-sweep-dead", labels=dead)
    orphan = client.containers.create(PG15, ["sleep", "infinity"], labels=dead)
    kept = client.containers.create(PG15, ["sleep", "infinity"], labels=alive)
    try:
        removed = sweep_docker_orphans()  # (another xdist worker may sweep them first)
        assert _leftovers(f"{LABEL_RUNDIR}={gone}") == [] and not _exists(orphan)
        assert kept.name not in removed and _exists(kept)
        assert remove_run_containers(live_run.path) == [kept.name]
    finally:
        for obj in (orphan, kept):
            if _exists(obj):
                obj.remove(force=True)
        if _exists(net):
            net.remove()
        live_run.close()


KILLED_OWNER = """
import sys
from pathlib import Path
from pytest_pgdr.hosts.docker import DockerHost, image_user
from pytest_pgdr.hosts.runtime import RunDir
run = RunDir(Path(sys.argv[1]))
host = DockerHost(image_user(sys.argv[2]), run, sys.argv[2], run.path / "1_killed", "killed")
print(host.prefix, flush=True)
sys.stdin.read()  # until killed
"""


def test_sweep_after_the_owner_is_killed(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_OWNER, str(tmp_path), PG15],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    prefix = child.stdout.readline().strip()
    try:
        assert len(_leftovers(f"{LABEL_HOST}={prefix}")) == 2  # toolbox + network
        assert not [n for n in sweep_docker_orphans() if n.startswith(prefix)]
    finally:
        child.kill()
        child.wait()
    sweep_docker_orphans()
    assert _leftovers(f"{LABEL_HOST}={prefix}") == []


def _exists(obj: Any) -> bool:
    try:
        obj.reload()
    except Exception:
        return False
    return True


def test_orphan_rules(run: RunDir) -> None:
    assert not is_orphaned(owner_labels(run))
    assert is_orphaned({**owner_labels(run), LABEL_RUNDIR: "/nonexistent/pgdr-run-x"})
    assert not is_orphaned(
        {**owner_labels(), LABEL_MACHINE: "another-machine", LABEL_RUNDIR: "/nonexistent"}
    )
    assert is_orphaned({**owner_labels(), "org.pytest-pgdr.owner-start": "1"})


# faults on the local backend ------------------------------------------------------------
def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _local_host(tmp_path: Path) -> Any:
    from pytest_pgdr.hosts.local import LocalHost
    from pytest_pgdr.hosts.osuser import resolve_os_user

    return LocalHost(resolve_os_user("auto"), RunDir(tmp_path))


def test_local_freeze_always_resumes(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    local = _local_host(tmp_path)
    node = _stand_in(name="local", host=local, proc=proc)
    try:
        with pytest.raises(RuntimeError), faults.freeze(node):
            poll(lambda: _state(proc.pid) == "T", "sleep to stop", 5)
            raise RuntimeError("drill failed inside the fault")
        poll(lambda: _state(proc.pid) != "T", "sleep to continue", 5)
    finally:
        proc.kill()
        proc.wait()
        local.run_dir.close()


def test_local_partition_and_disk_full_are_skips(tmp_path: Path) -> None:
    local = _local_host(tmp_path)
    node = _stand_in(name="local", host=local, proc=None)
    try:
        for fault in (faults.partition(node), faults.disk_full(node)):
            with pytest.raises(faults.FaultUnsupported) as info:
                fault.start()
            assert isinstance(info.value, VersionSkip) and not fault.active
    finally:
        local.run_dir.close()


def test_archive_failure_refuses_then_restores(tmp_path: Path) -> None:
    wal = tmp_path / "archive" / "wal"
    wal.mkdir(parents=True)
    (wal / "000000010000000000000001").write_text("seg1")
    topology = _stand_in(archive=_stand_in(wal=wal), host=this_machine())
    fault = faults.archive_failure(topology)
    with fault:
        assert not wal.exists()
        with pytest.raises(FileNotFoundError):
            (wal / "000000010000000000000002").write_text("refused")
        wal.mkdir()  # someone re-created it meanwhile: merged back
        (wal / "000000010000000000000003").write_text("seg3")
    assert sorted(p.name for p in wal.iterdir()) == [
        "000000010000000000000001",
        "000000010000000000000003",
    ]
    assert not fault.aside.exists() and faults.heal_all() == 0


def test_heal_all_undoes_active_faults(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    wal.mkdir()
    faults.archive_failure(_stand_in(archive=_stand_in(wal=wal), host=this_machine())).start()
    assert not wal.exists()
    assert faults.heal_all() == 1 and wal.is_dir()


def test_nothing_left_behind_by_probes() -> None:
    api = docker_client().api
    probes = api.containers(all=True, filters={"label": "org.pytest-pgdr.role=probe"})
    assert [c for c in probes if c["Labels"].get("org.pytest-pgdr.owner") == str(os.getpid())] == []
