"""The Docker backend without a shared file system: files in volumes, through the engine.

On the local engine, a volume host's files never appear on this machine; on a second engine
in its own mount namespace (an engine on "another machine"), built-in drills run unchanged,
and the bind-mount backend refuses it, saying why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_pgdr.hosts.docker import docker_status

_OK, _REASON = docker_status()
if not _OK:
    pytest.skip(_REASON, allow_module_level=True)

from second_engine import missing_prerequisite, second_engine  # noqa: E402

from pytest_pgdr.hosts.docker import (  # noqa: E402
    VolumeDockerHost,
    image_user,
    remove_run_containers,
)
from pytest_pgdr.hosts.runtime import RunDir  # noqa: E402

PG18 = "pytest-pgdr/pg18:latest"
# drills that cover the core: backups, PITR to each kind of target, replicas, promotion,
# pg_rewind, crash recovery, a corrupt and a missing segment
ON_ENGINE2 = "test_pitr_to_restore_point_after_accidental_delete or test_failover"


@pytest.fixture(scope="module")
def vhost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VolumeDockerHost]:
    run = RunDir(tmp_path_factory.mktemp("volume"))
    host = VolumeDockerHost(image_user(PG18), run, PG18, run.path / "1_vol", "vol", "127.0.0.1")
    yield host
    host.close()
    remove_run_containers(run.path)  # the run's template cache volume
    run.close()


def test_files_live_in_the_engine_not_here(vhost: VolumeDockerHost) -> None:
    root = vhost.root
    assert not root.exists()  # this machine never sees the topology's files
    vhost.make_dir(root / "d" / "e", 0o750)
    vhost.write_file(root / "d" / "conf", "a = 'it''s'\n", 0o640)
    assert vhost.read_text(root / "d" / "conf") == "a = 'it''s'\n"
    assert vhost.run(["stat", "-c", "%a %u", str(root / "d" / "conf")]).stdout.split() == [
        "640",
        str(vhost.user.uid),
    ]
    assert vhost.is_dir(root / "d" / "e") and not vhost.is_dir(root / "d" / "conf")
    assert vhost.names(root / "d") == ["conf", "e"] and vhost.names(root / "none") == []
    assert vhost.file_sizes(root / "d") == {"conf": 12}
    assert not root.exists()


def test_bytes_round_trip_and_patch_in_place(vhost: VolumeDockerHost) -> None:
    path = vhost.make_dir(vhost.root / "b") / "blob"
    data = bytes(range(256)) * 40
    vhost.write_bytes(path, data)
    assert vhost.read_bytes(path) == data
    vhost.write_bytes(path, b"\x00\xff\n", offset=24)
    assert vhost.read_bytes(path, 20, 10) == data[20:24] + b"\x00\xff\n" + data[27:30]
    assert vhost.tree_size(vhost.root / "b") == len(data)
    with pytest.raises(FileNotFoundError):
        vhost.read_bytes(vhost.root / "b" / "missing")
    with pytest.raises(FileNotFoundError):
        vhost.write_bytes(vhost.root / "b" / "missing", b"x", offset=3)


def test_trees_links_and_export(vhost: VolumeDockerHost, tmp_path: Path) -> None:
    src = vhost.make_dir(vhost.root / "src")
    vhost.write_file(src / "f", "one")
    vhost.make_link(Path("/elsewhere"), src / "link")
    assert vhost.read_link(src / "link") == Path("/elsewhere")
    assert vhost.read_link(src / "f") is None
    vhost.copy_tree(src, vhost.root / "copy")
    vhost.rename(vhost.root / "copy", vhost.root / "moved")
    assert vhost.exists(vhost.root / "moved" / "f") and not vhost.exists(vhost.root / "copy")
    vhost.export_tree(vhost.root / "moved", tmp_path / "kept")
    assert (tmp_path / "kept" / "moved" / "f").read_text() == "one"
    vhost.remove_tree(vhost.root / "moved")
    assert not vhost.exists(vhost.root / "moved")


@pytest.fixture(scope="module")
def engine2() -> Iterator[str]:
    why = missing_prerequisite()
    if why:
        pytest.skip(why)
    had_docker0 = _has_docker0()
    with second_engine([PG18]) as url:
        yield url
    # other workers' topologies come and go meanwhile: only the first engine's own bridge counts
    assert _has_docker0() == had_docker0, "the second engine removed the first one's docker0"


def _has_docker0() -> bool:
    """Whether docker0, the first engine's default bridge, is there."""
    return subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).returncode == 0


def _pytest(url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": url}
    argv = [sys.executable, "-m", "pytest", "--pgdr", "--pgdr-backend", "docker"]
    argv += ["--pgdr-image", PG18, "-p", "no:cacheprovider", "-p", "no:xdist", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=1500)


def test_builtin_drills_on_an_engine_that_shares_no_files(engine2: str) -> None:
    proc = _pytest(engine2, "--pgdr-scenarios", "only", "-q", "-k", ON_ENGINE2)
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, tail
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, tail
    assert "docker/pg18" in proc.stdout


def test_bind_mounts_on_such_an_engine_fail_saying_why(engine2: str, tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one(pgdr):\n    pgdr.primary()\n")
    proc = _pytest(
        engine2, "--pgdr-docker-storage", "bind", "--pgdr-scenarios", "none", cwd=tmp_path
    )
    assert proc.returncode == 1
    assert "does not see this machine's files" in proc.stdout
    assert "docs/scale.md" in proc.stdout
