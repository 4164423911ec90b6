"""A Barman server: ``barman:/etc/barman.conf?server=pg`` (``?backup=ID``, default the newest
DONE backup). The backup's identity is its ``backup.info`` in the catalogue.

``barman recover`` reads the catalogue; it runs with a copy of the team's configuration whose
log file and lock directory are in the sandbox (``barman_home`` stays the catalogue, which it
only reads; the tests prove every file byte-identical). WAL is then replayed straight from
the catalogue's ``wals`` directory by ``restore_command`` (read in place), after a gap check.
"""

from __future__ import annotations

import configparser
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pgdr.backup.base import segments_in
from pytest_pgdr.basics.wait import poll
from pytest_pgdr.sources.base import (
    BackupIdentity,
    Restored,
    SourceSpec,
    bad_backup,
    check_readable,
    run_as_server,
    tree_size,
)
from pytest_pgdr.sources.registry import check_options
from pytest_pgdr.sources.sandbox import (
    bootstrap_superuser,
    check_wal_chain,
    prepare_datadir,
    recover,
)

if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.cluster.recovery import RecoveryTarget
    from pytest_pgdr.cluster.topology import Topology


def read_info(path: Path) -> dict[str, str]:
    """A ``backup.info`` file: ``key=value`` lines."""
    out: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


class BarmanSource:
    pitr = True
    exact_major = True
    OPTIONS = ("server", "backup")

    def __init__(self, spec: SourceSpec) -> None:
        check_options(spec, self.OPTIONS)
        self.spec = spec
        self.config = Path(spec.path)
        self.server = spec.option("server", "pg")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(self.config.read_text())
        except (OSError, configparser.Error) as exc:
            raise bad_backup(self.spec, "has no readable Barman configuration", str(exc)) from None
        self.section = self._section(parser)
        self.home = Path(parser.get("barman", "barman_home", fallback="/var/lib/barman"))
        self.catalogue = self.home / self.server

    def _section(self, parser: configparser.ConfigParser) -> dict[str, str]:
        if parser.has_section(self.server):
            return dict(parser.items(self.server))
        extra = parser.get("barman", "configuration_files_directory", fallback="")
        for path in sorted(Path(extra).glob("*.conf")) if extra else []:
            more = configparser.ConfigParser(interpolation=None)
            more.read(path)
            if more.has_section(self.server):
                return dict(more.items(self.server))
        raise bad_backup(self.spec, f"has no Barman server {self.server!r}", f"in {self.config}")

    def paths(self) -> list[Path]:
        return [self.catalogue]

    def backup_dir(self) -> Path:
        wanted = self.spec.option("backup")
        base = self.catalogue / "base"
        done = [
            d
            for d in sorted(base.iterdir() if base.is_dir() else [])
            if (d / "backup.info").is_file()
            and read_info(d / "backup.info").get("status") == "DONE"
        ]
        chosen = [d for d in done if d.name == wanted] if wanted else done[-1:]
        if not chosen:
            have = ", ".join(d.name for d in done) or "none"
            raise bad_backup(
                self.spec, f"has no DONE backup {wanted or ''}".rstrip(), f"DONE backups: {have}"
            )
        return chosen[0]

    def info(self) -> dict[str, str]:
        return read_info(self.backup_dir() / "backup.info")

    def major(self) -> int:
        return int(self.info().get("version", "0")) // 10000

    def identity(self) -> BackupIdentity:
        info = self.info()
        proc = subprocess.run(["barman", "--version"], capture_output=True, text=True, check=False)
        version = (proc.stdout or proc.stderr).split()[:1] or ["?"]
        return BackupIdentity(
            kind=f"barman {info.get('backup_type', 'full')}",
            label=self.backup_dir().name,
            major=self.major(),
            tool_version=f"Barman {version[0]}",
            started=info.get("begin_time", ""),
            stopped=info.get("end_time", ""),
            start_lsn=info.get("begin_xlog", ""),
            stop_lsn=info.get("end_xlog", ""),
            size=tree_size([self.backup_dir()]),
            extra={"server": self.server, "begin_wal": info.get("begin_wal", "")},
        )

    def config_copy(self, topology: Topology, user: str) -> Path:
        """The team's server section under a ``[barman]`` whose log and locks are ours."""
        work = topology.host.make_dir(topology.root / "barman")
        lines = [
            "; pytest-pgdr: a copy of the team's Barman configuration for a read-only recover",
            "[barman]",
            f"barman_home = {self.home}",
            f"barman_user = {user}",
            f"barman_lock_directory = {work}",
            f"log_file = {work / 'barman.log'}",
            f"[{self.server}]",
            *(f"{key} = {value}" for key, value in self.section.items()),
        ]
        path = work / "barman.conf"
        topology.host.write_file(path, "\n".join(lines) + "\n", 0o644)
        return path

    def restore(self, topology: Topology, target: RecoveryTarget, stopwatch: Stopwatch) -> Restored:
        identity = self.identity()
        node = topology.new_node("sandbox")
        check_readable(node.host, self.spec, self.paths())
        wals = self.catalogue / "wals"
        segments = list(segments_in([p.name for p in wals.glob("*/*") if p.is_file()]))
        check_wal_chain(self.spec, identity.label, segments, identity.extra["begin_wal"])
        stopwatch.lap("check backup")
        user = poll(  # a quick docker exec now and then returns no output: ask again
            lambda: (
                run_as_server(node.host, ["id", "-un"], "naming the OS user").stdout.strip() or None
            ),
            "id -un to name the OS user Barman runs as",
            10,
        )
        config = self.config_copy(topology, user)
        argv = ["barman", "-c", str(config), "recover", self.server, identity.label]
        proc = run_as_server(node.host, [*argv, str(node.datadir)], "barman recover")
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ["nothing"]
            raise bad_backup(self.spec, "did not restore", f"barman says: {lines[0]}", lines[-15:])
        prepare_datadir(node)
        stopwatch.lap("restore files")
        w = shlex.quote(str(wals))
        node.conf["restore_command"] = f"cp {w}/$(echo %f | cut -c1-16)/%f %p"
        replayed = recover(node, target, stopwatch, bootstrap_superuser(node.datadir), segments)
        databases = tuple(
            str(n)
            for (n,) in node.query(
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate"
                " ORDER BY 1"
            )
        )
        identity.databases = databases
        return Restored(node, identity, databases, identity.size, True, replayed)
