"""Fixtures. Override any of them in your conftest.py (same name) to change what drills get.

Each imports the drill core inside its body, so a run that never requests one (a plain
``pytest`` in a repository that merely installed pytest-pgdr) never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_pgdr.plugin.markers import major_version
from pytest_pgdr.plugin.state import (
    KEY_INSTALLS,
    KEY_MEASURE,
    KEY_SESSION,
    KEY_SETTINGS,
    KEY_UNAVAILABLE,
    OPT_IN,
    failed,
    unavailable,
)

if TYPE_CHECKING:
    from pytest_pgdr.backup import BackupTool
    from pytest_pgdr.cluster.archive import Archive
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology
    from pytest_pgdr.drill.dataset import Dataset
    from pytest_pgdr.drill.measure import Measurement
    from pytest_pgdr.drill.teamdata import TeamData
    from pytest_pgdr.ha import ClusterManager
    from pytest_pgdr.ha.pooler import ClientPath
    from pytest_pgdr.hosts.install import Installation
    from pytest_pgdr.session import HarnessSession
    from pytest_pgdr.sources import NightlySource, Restored


@pytest.fixture(scope="session")
def pgdr_session(request: pytest.FixtureRequest) -> HarnessSession:
    """The harness for this pytest process: run directory, OS user, installations."""
    from pytest_pgdr.basics.errors import PgdrError
    from pytest_pgdr.session import DockerUnavailable, HarnessSession

    config = request.config
    session = config.stash.get(KEY_SESSION, None)
    if session is None:
        settings = config.stash[KEY_SETTINGS]
        if not settings.enabled:
            pytest.skip(OPT_IN)
        try:
            session = HarnessSession(settings)
        except DockerUnavailable as exc:
            unavailable(config, str(exc))
        except PgdrError as exc:
            pytest.fail(str(exc), pytrace=False)
        config.stash[KEY_SESSION] = session
    return session


@pytest.fixture(scope="session")
def pgdr_install(request: pytest.FixtureRequest, pgdr_session: HarnessSession) -> Installation:
    """The PostgreSQL installation this drill runs on (drills run once per installation)."""
    from pytest_pgdr.basics.errors import PgdrError, Unavailable
    from pytest_pgdr.session import DockerUnavailable

    spec = getattr(request, "param", pgdr_session.settings.specs()[0])
    reason = request.config.stash.get(KEY_UNAVAILABLE, {}).get(spec)
    if reason is not None:
        unavailable(request.config, reason)
    try:
        return pgdr_session.installation(spec)
    except (DockerUnavailable, Unavailable) as exc:
        unavailable(request.config, str(exc))
    except PgdrError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def pgdr(
    request: pytest.FixtureRequest, pgdr_session: HarnessSession, pgdr_install: Installation
) -> Iterator[Topology]:
    """This test's topology factory: ``pgdr.primary()``, ``.replica(p)``, ``.restore(b, t)``."""
    marker = request.node.get_closest_marker("pgdr")
    needed = major_version(marker.kwargs.get("min_version")) if marker else None
    if needed and pgdr_install.major < needed:
        pytest.skip(f"needs PostgreSQL {needed} or newer; this is {pgdr_install.describe()}")
    topo = pgdr_session.topology(pgdr_install, request.node.name)
    yield topo
    keep = pgdr_session.settings.keep
    if keep == "always" or (keep == "failed" and failed(request.node)):
        topo.close(keep_to=pgdr_session.keep_path(request.node.nodeid))
    else:
        topo.close()


@pytest.fixture
def pgdr_measure(request: pytest.FixtureRequest) -> Measurement:
    """Record the drill's recovery time (``declare_disaster()`` then laps) and other figures."""
    from pytest_pgdr.drill.measure import Measurement

    measurement = Measurement()
    request.node.stash[KEY_MEASURE] = measurement
    return measurement


@pytest.fixture
def pgdr_data(
    request: pytest.FixtureRequest, pgdr_dataset: Dataset, pgdr_measure: Measurement
) -> TeamData:
    """The database every drill protects: yours, from ``pgdr_schema`` files or a
    ``pytest_pgdr_seed`` hook in any conftest.py, else the built-in dataset (``pgdr_dataset``).

    ``.dbname`` is its database, ``.load(node)`` fills a primary, ``.victim(node)`` names the
    table the drills' accidents hit (``pgdr_victim``).
    """
    from pytest_pgdr.basics.errors import PgdrError
    from pytest_pgdr.drill.teamdata import choose_team_data

    config = request.config
    settings = config.stash[KEY_SETTINGS]
    caller = config.pluginmanager.hook.pytest_pgdr_seed
    seed = None
    if caller.get_hookimpls():

        def seed(node: Node, dbname: str) -> object:
            return caller(node=node, dbname=dbname)

    schema = [str(_rooted(config, p)) for p in settings.schema]
    try:
        data = choose_team_data(schema, seed, settings.database, settings.victim, pgdr_dataset)
    except PgdrError as exc:
        pytest.fail(str(exc), pytrace=False)
    pgdr_measure.context["data"] = data.describe()  # the report says what was protected
    return data


def _rooted(config: pytest.Config, path: str) -> Path:
    """Relative schema paths are read from the rootdir (where the ini file is)."""
    return Path(path) if Path(path).is_absolute() else config.rootpath / path


@pytest.fixture
def pgdr_seed(pgdr_data: TeamData) -> Callable[[Node], None]:
    """Loads what ``pgdr_primary`` holds: by default the database of ``pgdr_data``. Override
    it in a conftest.py to load something else into the primary of your own drills (the
    built-in drills use ``pgdr_data``, which reads the ini keys and the seed hook)."""
    return pgdr_data.load


@pytest.fixture
def pgdr_dataset(request: pytest.FixtureRequest) -> Dataset:
    """The built-in realistic dataset (``Dataset(scale=pgdr_scale)``: ~26,000 rows at 1).

    Override it in your conftest.py to drill on more data, e.g. ``return Dataset(scale=50)``;
    see :mod:`pytest_pgdr.drill.dataset`.
    """
    from pytest_pgdr.drill.dataset import Dataset

    return Dataset(scale=request.config.stash[KEY_SETTINGS].scale)


@pytest.fixture
def pgdr_archive(pgdr: Topology) -> Archive:
    """The WAL and base-backup archive of this test's topology."""
    return pgdr.archive


@pytest.fixture
def pgdr_primary(pgdr: Topology, pgdr_seed: Callable[[Node], None]) -> Node:
    """A running primary, archiving to ``pgdr_archive``, loaded by ``pgdr_seed``."""
    node = pgdr.primary()
    pgdr_seed(node)
    return node


@pytest.fixture
def pgdr_replica(pgdr: Topology, pgdr_primary: Node) -> Node:
    """A streaming replica of ``pgdr_primary``, caught up."""
    node = pgdr.replica(pgdr_primary)
    pgdr.wait_caught_up(pgdr_primary, node)
    return node


@pytest.fixture
def pgdr_backup_tool(
    request: pytest.FixtureRequest,
    pgdr: Topology,
    pgdr_session: HarnessSession,
    pgdr_measure: Measurement,
) -> BackupTool:
    """The backup tool this drill runs through (one run per ``--pgdr-backup-tool``), set up
    in the topology's run directory; its name and version go into the drill's report."""
    from pytest_pgdr.backup import backup_tool

    name = str(getattr(request, "param", "plain"))
    tool = backup_tool(name, pgdr, programs={"walg": pgdr_session.settings.walg})
    pgdr_measure.context["backup_tool"] = f"{tool.name} {tool.version()}"
    return tool


@pytest.fixture
def pgdr_ha(
    pgdr: Topology, pgdr_measure: Measurement, pgdr_session: HarnessSession
) -> Iterator[Callable[..., ClusterManager]]:
    """Start a cluster under a cluster manager: ``pgdr_ha("patroni", synchronous_mode=True)``
    gives three Patroni nodes electing their leader in a three-member etcd, running and
    streaming (options: :class:`~pytest_pgdr.ha.patroni_config.PatroniOptions`); ``"plain"``
    a primary and two replicas. Every cluster is stopped at teardown. With
    ``--pgdr-patroni-url`` (and ``--pgdr-patroni-dsn``), ``"patroni"`` is that running cluster
    instead, whose nodes cannot be killed or frozen from here (those drills are skipped)."""
    from pytest_pgdr.ha import cluster_manager
    from pytest_pgdr.ha.patroni_config import PatroniOptions

    started: list[ClusterManager] = []

    def start(name: str = "patroni", members: int = 3, **options: object) -> ClusterManager:
        settings = pgdr_session.settings
        urls, dsn = list(settings.patroni_url), settings.patroni_dsn or ""
        existing = (urls, dsn) if urls and name == "patroni" else None
        chosen = PatroniOptions(**options)  # type: ignore[arg-type]
        manager = cluster_manager(name, pgdr, members, chosen, existing)
        started.append(manager)
        manager.start()
        pgdr_measure.context["cluster_manager"] = manager.describe()
        return manager

    yield start
    for manager in reversed(started):
        manager.close()


@pytest.fixture
def pgdr_patroni(pgdr_ha: Callable[..., ClusterManager]) -> ClusterManager:
    """A running three-node Patroni cluster (asynchronous, ttl 10 s) on etcd."""
    return pgdr_ha("patroni")


@pytest.fixture
def pgdr_source(request: pytest.FixtureRequest, pgdr_session: HarnessSession) -> NightlySource:
    """The team's backup this test restores (one run per ``--pgdr-source``, ids = names)."""
    from pytest_pgdr.basics.errors import PgdrError
    from pytest_pgdr.sources import NightlySource, sources_from

    settings = pgdr_session.settings
    param = getattr(request, "param", None)
    if param is None:
        pytest.skip(
            "no backup source given: name your backups with --pgdr-source NAME=KIND:PATH"
            " (or pgdr_source in the ini file, one a line)"
        )
    name, _, backend = str(param).partition("@")
    try:
        spec = sources_from(settings.source)[name]
    except PgdrError as exc:
        pytest.fail(str(exc), pytrace=False)
    return NightlySource(spec, backend or settings.backends[0])


@pytest.fixture
def pgdr_restore(
    request: pytest.FixtureRequest,
    pgdr_session: HarnessSession,
    pgdr_source: NightlySource,
    pgdr_measure: Measurement,
) -> Iterator[Callable[[], Restored]]:
    """``pgdr_restore()`` restores ``pgdr_source`` into a new sandbox on the PostgreSQL major
    its backup needs and returns a :class:`~pytest_pgdr.sources.Restored` (``.node``,
    ``.identity``, ``.databases``); phases, throughput and the backup's identity go to the
    drill's report. The sandbox is removed at teardown (kept with --pgdr-keep)."""
    from pytest_pgdr.basics.settings import DOCKER_PREFIX
    from pytest_pgdr.sources import restore_nightly

    settings = pgdr_session.settings
    docker = pgdr_source.backend == "docker"
    installs = request.config.stash.get(KEY_INSTALLS, [])
    candidates = [
        (spec, inst)
        for spec, inst in zip(settings.specs(), installs, strict=False)
        if inst is not None and spec.startswith(DOCKER_PREFIX) == docker
    ]
    made: list[Topology] = []

    def make(spec: str) -> Topology:
        topology = pgdr_session.topology(pgdr_session.installation(spec), request.node.name)
        made.append(topology)
        return topology

    def restore() -> Restored:
        rto = pgdr_measure.rto or pgdr_measure.declare_disaster()
        programs = {"walg": settings.walg}
        return restore_nightly(pgdr_source, candidates, make, rto, pgdr_measure, programs)[0]

    yield restore
    keep = settings.keep
    for topology in made:
        if keep == "always" or (keep == "failed" and failed(request.node)):
            topology.close(keep_to=pgdr_session.keep_path(request.node.nodeid))
        else:
            topology.close()


@pytest.fixture
def pgdr_restored(pgdr_restore: Callable[[], Restored]) -> Restored:
    """The team's backup (``pgdr_source``), restored and running: give it to your own tests
    (``pgdr_restored.node.query(...)``) for the checks a TOML file cannot say."""
    return pgdr_restore()


@pytest.fixture
def pgdr_client_path(
    pgdr: Topology, pgdr_measure: Measurement
) -> Iterator[Callable[..., ClientPath]]:
    """Make how the application connects, in front of nodes (the primary first):
    ``pgdr_client_path("pgbouncer", [primary, replica], dbnames=[db])``; kinds are
    ``direct``, ``multihost``, ``pgbouncer`` and ``pgpool`` (``pytest_pgdr.ha.pooler``).
    Each is started, named in the drill's report, and stopped and reaped after the test; a
    missing pooler program skips naming its Debian package (fails in strict mode with
    ``pgdr_ha = required``)."""
    from pytest_pgdr.ha.pooler import client_path

    made: list[ClientPath] = []

    def make(kind: str, nodes: list[Node], dbnames: tuple[str, ...] = ("postgres",)) -> ClientPath:
        path = client_path(kind, pgdr, nodes, dbnames)
        made.append(path)
        pgdr_measure.context["client_path"] = path.describe()
        return path

    yield make
    for path in reversed(made):
        path.close()
