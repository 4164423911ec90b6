"""The archive command the harness gives every archiving node keeps PostgreSQL's promise
(docs, "Setting Up WAL Archiving"): it never overwrites a segment already archived with other
content (a second cluster archiving into the same path), and archiving the same segment twice
with the same bytes succeeds (the server retries after a crash between copy and status file).

Run through a real shell with real ``cp``/``cmp``/``mv``, as the server runs it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_pgdr.cluster.archive import Archive

SEGMENT = "000000010000000000000003"


class Dirs:
    """The one host operation an archive needs here: making its directories."""

    def make_dir(self, path: Path, mode: int = 0o700) -> Path:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        return path


def archive_one(archive: Archive, source: Path) -> int:
    """Run the archive command for ``source`` the way the server does (%p, %f substituted)."""
    command = archive.archive_command().replace("%p", str(source)).replace("%f", source.name)
    return subprocess.run(["sh", "-c", command], check=False).returncode


def segment(tmp_path: Path, content: bytes, where: str) -> Path:
    path = tmp_path / where / SEGMENT
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


def test_new_segment_is_copied_without_leftovers(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive", Dirs())  # type: ignore[arg-type]
    source = segment(tmp_path, b"first cluster" * 100, "pg_wal")
    assert archive_one(archive, source) == 0
    assert (archive.wal / SEGMENT).read_bytes() == source.read_bytes()
    assert [p.name for p in archive.wal.iterdir()] == [SEGMENT], "a temporary copy was left"


def test_same_segment_again_succeeds_and_changes_nothing(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive", Dirs())  # type: ignore[arg-type]
    source = segment(tmp_path, b"first cluster" * 100, "pg_wal")
    assert archive_one(archive, source) == 0
    before = (archive.wal / SEGMENT).stat()
    assert archive_one(archive, source) == 0, "an identical segment must archive idempotently"
    after = (archive.wal / SEGMENT).stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_other_content_under_the_same_name_is_refused(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive", Dirs())  # type: ignore[arg-type]
    first = segment(tmp_path, b"first cluster" * 100, "pg_wal")
    second = segment(tmp_path, b"second cluster" * 100, "other_pg_wal")
    assert archive_one(archive, first) == 0
    assert archive_one(archive, second) != 0, "a different segment overwrote an archived one"
    assert (archive.wal / SEGMENT).read_bytes() == first.read_bytes()
    assert [p.name for p in archive.wal.iterdir()] == [SEGMENT]


def test_a_longer_or_shorter_file_is_refused_too(tmp_path: Path) -> None:
    """``cmp`` compares the whole file: a prefix (a partial copy) is not 'identical'."""
    archive = Archive(tmp_path / "archive", Dirs())  # type: ignore[arg-type]
    full = segment(tmp_path, b"x" * 2048, "pg_wal")
    (archive.wal / SEGMENT).write_bytes(b"x" * 1024)
    assert archive_one(archive, full) != 0
    assert (archive.wal / SEGMENT).read_bytes() == b"x" * 1024
