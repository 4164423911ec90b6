"""The images' postgres account never is an account of this machine (issue 9c)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from pytest_pgdr.basics.errors import MissingBinaryError
from pytest_pgdr.hosts.docker import probe
from pytest_pgdr.hosts.images import pg15_import_changes
from pytest_pgdr.hosts.images.account import FIRST_ID, choose_ids, move_postgres_account
from pytest_pgdr.hosts.osuser import OsUser, host_account


def _rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        f"other:x:{FIRST_ID}:{FIRST_ID}::/:/bin/sh\n"
        "postgres:x:100:102:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n"
    )
    (root / "etc/group").write_text("root:x:0:\nssl-cert:x:101:postgres\npostgres:x:102:\n")
    home = root / "var/lib/postgresql"
    home.mkdir(parents=True)
    os.chown(home, 100, 102)
    (home / "f").write_text("x")
    os.chown(home / "f", 100, 0)
    (root / "etc/kept").write_text("root's")
    return root


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_postgres_account_moves_to_an_id_unused_here_and_in_the_image(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    uid, gid = choose_ids(root)
    assert uid > FIRST_ID  # FIRST_ID is taken in the image
    assert host_account(uid) is None
    assert move_postgres_account(root, uid, gid) == (100, 102)
    assert f"postgres:x:{uid}:{gid}:PostgreSQL" in (root / "etc/passwd").read_text()
    assert f"postgres:x:{gid}:\n" in (root / "etc/group").read_text()
    home = root / "var/lib/postgresql"
    assert (home.stat().st_uid, home.stat().st_gid) == (uid, gid)
    assert ((home / "f").stat().st_uid, (home / "f").stat().st_gid) == (uid, 0)
    assert (root / "etc/kept").stat().st_uid == 0
    assert f"LABEL org.pytest-pgdr.postgres-uid={uid}" in pg15_import_changes(uid)


def _facts(uid: int) -> probe.ImageFacts:
    return probe.ImageFacts("img", "sha256:x", uid, uid, "/b", "", frozenset())


def test_an_image_uid_that_is_an_account_here_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = next(p for p in pwd.getpwall() if p.pw_uid not in (0, os.geteuid()))
    monkeypatch.setattr(probe, "probe_image", lambda image: _facts(taken.pw_uid))
    with pytest.raises(MissingBinaryError) as info:
        probe.image_user("img")
    text = str(info.value)
    assert f"uid {taken.pw_uid}" in text and repr(taken.pw_name) in text
    assert "build --force" in text
    # the harness's own server account is fine: the files are its own anyway
    mine = OsUser(name=taken.pw_name, uid=taken.pw_uid, gid=taken.pw_gid)
    assert probe.image_user("img", harness=mine).uid == taken.pw_uid


def test_an_image_uid_unknown_here_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    free = next(u for u in range(FIRST_ID, FIRST_ID + 500) if host_account(u) is None)
    monkeypatch.setattr(probe, "probe_image", lambda image: _facts(free))
    assert probe.image_user("img").uid == free


@pytest.mark.parametrize("image", ["pytest-pgdr/pg15:latest", "pytest-pgdr/pg18:latest"])
def test_the_built_images_use_an_account_unknown_here(image: str) -> None:
    from pytest_pgdr.hosts.docker import docker_status

    ok, why = docker_status()
    if not ok:
        pytest.skip(why)
    user = probe.image_user(image)
    assert host_account(user.uid) is None, f"{image}: uid {user.uid} is an account here"
    assert user.uid >= FIRST_ID
