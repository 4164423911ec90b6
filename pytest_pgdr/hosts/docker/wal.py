"""A node's size-limited ``pg_wal``: a tmpfs volume, filled to the last byte on demand.

A node given a WAL limit keeps ``pg_wal`` on a size-limited tmpfs volume, held mounted by a
``<node>-wal`` container so that it survives the node's container being replaced (a restart
or a crash).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_pgdr.basics.errors import PgdrError
from pytest_pgdr.hosts.docker.engine import DockerError, _short, start_box
from pytest_pgdr.hosts.docker.labels import LABEL_NODE, LABEL_ROLE
from pytest_pgdr.hosts.docker.process import ContainerProcess
from pytest_pgdr.hosts.osuser import OsUser

WAL_FS = "walfs"  # a WAL-limited node's tmpfs, mounted at <node dir>/walfs in its containers
WAL_FILLER = "pgdr-disk-full"  # the file that fills it (next to pg_wal, not inside)
WAL_SIZE_RX = re.compile(r"^[1-9][0-9]*[kmg]?$")
FULL_SLACK = 64 * 1024  # "full": less free than this (tmpfs rounds to pages)


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


class WalLimits:
    """The WAL-limit operations of :class:`~pytest_pgdr.hosts.docker.host.DockerHost`."""

    api: Any
    prefix: str
    labels: dict[str, str]
    user: OsUser
    processes: dict[str, ContainerProcess]
    wal_limits: dict[str, WalLimit]

    def make_dir(self, path: Path, mode: int = 0o700) -> Path:
        raise NotImplementedError

    def _container(
        self,
        name: str,
        entrypoint: list[str],
        command: list[str],
        role: str,
        alias: str,
        wal: WalLimit | None = None,
    ) -> Any:
        raise NotImplementedError

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
        limit = self.wal_limits[node] = WalLimit(node, volume, mount, limit.size, start_box(holder))
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
