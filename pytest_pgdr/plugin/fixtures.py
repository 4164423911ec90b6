"""Fixtures. Override any of them in your conftest.py (same name) to change what drills get.

Each imports the drill core inside its body, so a run that never requests one (a plain
``pytest`` in a repository that merely installed pytest-pgdr) never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_pgdr.plugin.markers import major_version
from pytest_pgdr.plugin.state import (
    KEY_MEASURE,
    KEY_SESSION,
    KEY_SETTINGS,
    KEY_UNAVAILABLE,
    OPT_IN,
    failed,
    unavailable,
)

if TYPE_CHECKING:
    from pytest_pgdr.cluster.archive import Archive
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.topology import Topology
    from pytest_pgdr.drill.dataset import Dataset
    from pytest_pgdr.drill.measure import Measurement
    from pytest_pgdr.hosts.install import Installation
    from pytest_pgdr.session import HarnessSession

EMPLOYEES = """
CREATE TABLE employees (
    id serial PRIMARY KEY,
    full_name text NOT NULL,
    dept text NOT NULL,
    salary numeric(10, 2) CHECK (salary > 0)
);
INSERT INTO employees (full_name, dept, salary) VALUES
    ('Asha Singh', 'IT', 1200000), ('Rohit Verma', 'Finance', 950000),
    ('Pooja Das', 'HR', 600000);
"""


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
def pgdr_seed() -> Callable[[Node], None]:
    """Loads the schema and data a drill protects. Override it to bring your own.

    The default is the runbook's ``employees`` table. The drills fingerprint every table, so
    whatever your seed creates is verified after recovery too.
    """

    def seed(node: Node) -> None:
        node.psql(EMPLOYEES)

    return seed


@pytest.fixture
def pgdr_dataset() -> Dataset:
    """The realistic dataset the logical-backup drills load (``Dataset(scale=1)``: ~26,000 rows).

    Override it in your conftest.py to drill on more data, e.g. ``return Dataset(scale=50)``;
    see :mod:`pytest_pgdr.drill.dataset`.
    """
    from pytest_pgdr.drill.dataset import Dataset

    return Dataset()


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
