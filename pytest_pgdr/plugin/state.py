"""What the plugin keeps on pytest's config and items (stash keys), shared by hooks and fixtures.

Light on purpose: pytest and the standard library only; the types of the drill core are named
for the type checker alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_pgdr.basics.settings import Settings
    from pytest_pgdr.drill.measure import Measurement
    from pytest_pgdr.session import HarnessSession

KEY_SETTINGS: pytest.StashKey[Settings] = pytest.StashKey()
KEY_SESSION: pytest.StashKey[HarnessSession | None] = pytest.StashKey()
KEY_MEASURE: pytest.StashKey[Measurement] = pytest.StashKey()
KEY_INSTALLS = pytest.StashKey[list[Any]]()
KEY_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()

# the attribute of a call report that carries the drill's measurement (survives xdist)
REPORT_KEY = "pgdr"
# fixtures that need a server: a test requesting one is a drill
DRILL_FIXTURES = frozenset({"pgdr", "pgdr_archive", "pgdr_primary", "pgdr_replica", "pgdr_session"})
OPT_IN = (
    "PostgreSQL DR drill: opt in with 'pytest --pgdr' (or pgdr_enabled = true in the ini"
    " file, or PGDR_ENABLED=1)"
)


def failed(item: pytest.Item) -> bool:
    """Whether any phase (setup, call, teardown so far) of ``item`` failed."""
    return any(r.failed for r in item.stash.get(KEY_REPORTS, {}).values())


def remember_report(item: pytest.Item, report: pytest.TestReport) -> None:
    item.stash.setdefault(KEY_REPORTS, {})[report.when] = report
