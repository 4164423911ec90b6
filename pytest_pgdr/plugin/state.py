"""What the plugin keeps on pytest's config and items (stash keys), shared by hooks and fixtures.

Light on purpose: pytest and the standard library only; the types of the drill core are named
for the type checker alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from pytest_pgdr.basics.settings import Settings
    from pytest_pgdr.drill.measure import Measurement
    from pytest_pgdr.session import HarnessSession

KEY_SETTINGS: pytest.StashKey[Settings] = pytest.StashKey()
KEY_STARTED: pytest.StashKey[float] = pytest.StashKey()  # when this pytest process began
KEY_SESSION: pytest.StashKey[HarnessSession | None] = pytest.StashKey()
KEY_MEASURE: pytest.StashKey[Measurement] = pytest.StashKey()
KEY_INSTALLS = pytest.StashKey[list[Any]]()
KEY_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
# installation spec -> why it cannot run here (a backend that is absent)
KEY_UNAVAILABLE = pytest.StashKey[dict[str, str]]()

# the attribute of a call report that carries the drill's measurement (survives xdist)
REPORT_KEY = "pgdr"
# the attribute of every report of a drill that names its target (local/pg18, docker/pg15)
TARGET_KEY = "pgdr_target"
# fixtures that need a server: a test requesting one is a drill
DRILL_FIXTURES = frozenset(
    {"pgdr", "pgdr_archive", "pgdr_data", "pgdr_primary", "pgdr_replica", "pgdr_session"}
)
OPT_IN = (
    "PostgreSQL DR drill: opt in with 'pytest --pgdr' (or pgdr_enabled = true in the ini"
    " file, or PGDR_ENABLED=1)"
)


def strict_note(settings: Settings) -> str:
    return (
        f" Strict mode is on ({settings.sources.get('strict', 'default')}), so this fails"
        " instead of skipping; --pgdr-strict=off (or PGDR_STRICT=off) skips it instead."
    )


def unavailable(config: pytest.Config, reason: str) -> NoReturn:
    """Something the run asked for is missing: skip, or fail in strict mode."""
    settings = config.stash[KEY_SETTINGS]
    if settings.strict:
        pytest.fail(reason + strict_note(settings), pytrace=False)
    pytest.skip(reason)


def failed(item: pytest.Item) -> bool:
    """Whether any phase (setup, call, teardown so far) of ``item`` failed."""
    return any(r.failed for r in item.stash.get(KEY_REPORTS, {}).values())


def remember_report(item: pytest.Item, report: pytest.TestReport) -> None:
    item.stash.setdefault(KEY_REPORTS, {})[report.when] = report
