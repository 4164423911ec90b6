"""Files in Docker volumes, read and written through the engine: nothing on this machine.

A topology on an engine that does not share this machine's disk keeps its root directory in
one volume and its archive in another (the 3-2-1 rule: the archive is on no server's disk),
both mounted at the same paths in every container. Every file operation is a short script
run in the topology's toolbox container as the server user; bytes travel base64-encoded, so
binary files (``pg_control``, WAL headers) and logs cross the engine's API unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_pgdr.hosts.docker.engine import DockerError
from pytest_pgdr.hosts.docker.toolbox import Toolbox
from pytest_pgdr.hosts.osuser import OsUser

MISSING = 44  # a script's exit code for "no such file"
FILES_TIMEOUT = 600.0  # a copy of a large data directory inside the engine


class VolumeFiles:
    """A topology's files in the engine's volumes (see the module docstring)."""

    user: OsUser
    root: Path
    toolbox: Toolbox
    _closed: bool

    def _sh(self, script: str, *args: object, what: str) -> str:
        """``sh -c script`` in the toolbox; its stdout. ``FileNotFoundError`` on exit 44."""
        return self._script(script, args, None, what)

    def _sh_input(self, script: str, text: str, *args: object, what: str) -> None:
        self._script(script, args, text, what)

    def _script(self, script: str, args: tuple[object, ...], text: str | None, what: str) -> str:
        argv = ["sh", "-c", script, "sh", *(str(a) for a in args)]
        proc = self.toolbox.run(argv, {"LC_ALL": "C"}, input=text, timeout=FILES_TIMEOUT)
        if proc.returncode == MISSING:
            raise FileNotFoundError(f"no such file in the topology's volume: {args[0]}")
        if proc.returncode != 0:
            raise DockerError(
                f"Could not {what} in the topology's volume",
                f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:500]}",
                "Check the Docker engine ('docker info') and the volume's free space",
            )
        return proc.stdout

    # writing ----------------------------------------------------------------------------
    def make_dir(self, path: Path, mode: int = 0o700) -> Path:
        self._sh('mkdir -p "$1" && chmod "$2" "$1"', path, f"{mode:o}", what=f"make {path}")
        return path

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        script = (
            't="$(dirname "$1")/.$(basename "$1").tmp"'
            '; cat > "$t" && chmod "$2" "$t" && mv -f "$t" "$1"'
        )
        self._sh_input(script, text, path, f"{mode:o}", what=f"write {path}")

    def write_bytes(self, path: Path, data: bytes, offset: int | None = None) -> None:
        encoded = base64.b64encode(data).decode()
        if offset is None:
            script = 'base64 -d > "$1"'
        else:
            script = (
                '[ -f "$1" ] || exit 44'
                '; base64 -d | dd of="$1" bs=1 seek="$2" conv=notrunc status=none'
            )
        self._sh_input(script, encoded, path, offset or 0, what=f"write {path}")

    def remove_file(self, path: Path) -> None:
        self._sh('rm -f "$1"', path, what=f"remove {path}")

    def make_link(self, target: Path, link: Path) -> None:
        self._sh('ln -sfn "$1" "$2"', target, link, what=f"link {link}")

    def copy_tree(self, source: Path, target: Path) -> None:
        self._sh('cp -a "$1" "$2"', source, target, what=f"copy {source} to {target}")

    def rename(self, source: Path, target: Path) -> None:
        self._sh('mv -T "$1" "$2"', source, target, what=f"rename {source}")

    def remove_tree(self, path: Path) -> None:
        if self._closed or path == self.root:  # the volume goes with the topology
            return
        self._sh('rm -rf "$1"', path, what=f"remove {path}")

    # reading ----------------------------------------------------------------------------
    def read_bytes(self, path: Path, offset: int = 0, length: int = -1) -> bytes:
        cut = "" if length < 0 else f" | head -c {int(length)}"
        script = f'[ -f "$1" ] || exit 44; tail -c +$(($2 + 1)) "$1"{cut} | base64 -w0'
        return base64.b64decode(self._sh(script, path, int(offset), what=f"read {path}"))

    def read_text(self, path: Path) -> str:
        return self.read_bytes(path).decode("utf-8", errors="replace")

    def exists(self, path: Path) -> bool:
        return self._test('[ -e "$1" ] || [ -L "$1" ]', path)

    def is_dir(self, path: Path) -> bool:
        return self._test('[ -d "$1" ]', path)

    def _test(self, script: str, path: Path) -> bool:
        return self._sh(f"if {script}; then echo y; fi", path, what=f"look at {path}") == "y\n"

    def names(self, path: Path) -> list[str]:
        out = self._sh('[ -d "$1" ] || exit 0; ls -A "$1"', path, what=f"list {path}")
        return sorted(out.splitlines())

    def file_sizes(self, path: Path) -> dict[str, int]:
        script = (
            '[ -d "$1" ] || exit 0; find "$1" -mindepth 1 -maxdepth 1 -type f -printf "%s %f\\n"'
        )
        sizes = {}
        for line in self._sh(script, path, what=f"list {path}").splitlines():
            size, _, name = line.partition(" ")
            sizes[name] = int(size)
        return sizes

    def tree_size(self, path: Path) -> int:
        out = self._sh('find "$1" -type f -printf "%s\\n"', path, what=f"measure {path}")
        return sum(int(line) for line in out.split())

    def read_link(self, path: Path) -> Path | None:
        out = self._sh('readlink "$1" || true', path, what=f"read the link {path}").strip()
        return Path(out) if out else None

    # this machine -----------------------------------------------------------------------
    def export_tree(self, path: Path, keep_to: Path) -> None:
        """Copy ``path`` out of the engine (``docker cp``) into ``keep_to`` on this machine."""
        api: Any = self.toolbox.api
        stream, _ = api.get_archive(self.toolbox.container_id, str(path))
        keep_to.mkdir(parents=True, exist_ok=True)
        data = io.BytesIO(b"".join(stream))
        with tarfile.open(fileobj=data) as tar:
            tar.extractall(keep_to, filter="tar")  # links to tablespaces are absolute

    @contextlib.contextmanager
    def locked(self, path: Path) -> Iterator[None]:
        yield  # the cache lives in this topology's own volume: no one else builds there
