"""Nightly restore of the team's real backups into a sandbox, with the proof kept.

The runbook's first anti-pattern is "taking backups but never testing restore"; its fix is the
nightly job pgBackRest's ``pgbackrest_auto`` and many CI repositories script by hand: restore
last night's backup into a scratch server and check the tables that matter. This drill is that
job for every source named with ``--pgdr-source`` (ids = source names): a pg_dump or
pg_dumpall file, a base backup with its WAL archive, a pgBackRest stanza, a Barman server, a
WAL-G store. It follows pgBackRest's own restore tests (each restore proven by the data it
holds, never by an exit code) and PostgreSQL src/test/recovery 001/002 (a base backup plus the
archive replayed to its end):

* the backup is restored on the PostgreSQL major it needs (read from the backup itself);
* a PITR source replays its whole WAL chain, a gap naming the missing segment;
* every relation is read once, every btree index is checked with amcheck (heapallindexed),
  and data checksums are verified with the sandbox stopped, when the backup has them;
* the team's declared checks (``--pgdr-source-checks``: tables, row counts, data age, SQL
  assertions) all hold;
* the backup's identity, the restore's phases and throughput, the data age and each check's
  result go to the JSON/JUnit/HTML reports, night after night.

Without a source the drill is skipped, saying how to name one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_pgdr.drill.amcheck import check_indexes
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.session import HarnessSession
from pytest_pgdr.sources import NightlySource, Restored, backup_age, load_checks, run_checks
from pytest_pgdr.sources.checks import CheckResult
from pytest_pgdr.sources.verify import checksums_enabled, read_every_relation, verify_checksums

pytestmark = pytest.mark.pgdr


def test_nightly_restore(
    request: pytest.FixtureRequest,
    pgdr_session: HarnessSession,
    pgdr_source: NightlySource,
    pgdr_restore: Callable[[], Restored],
    pgdr_measure: Measurement,
) -> None:
    checks_file = _rooted(request, pgdr_session.settings.source_checks)
    checks = load_checks(checks_file, pgdr_source.spec.name)
    rto = pgdr_measure.declare_disaster()
    restored = pgdr_restore()
    node = restored.node
    pgdr_measure.attach_log(node)

    read = read_every_relation(node, restored.databases)
    rto.lap("read every relation")
    pgdr_measure.figure("verified bytes", read.bytes, "B")
    pgdr_measure.figure("verify throughput", round(read.rate, 1), "B/s")

    corrupt: dict[str, str] = {}
    for db in restored.databases:
        indexes = check_indexes(node, db)
        corrupt.update({f"{db}: {k}": v for k, v in indexes.corrupt.items()})
        pgdr_measure.record(f"amcheck {db}", indexes.skipped or f"{len(indexes.checked)} indexes")
    rto.lap("amcheck")
    if checksums_enabled(node):
        pgdr_measure.record("data checksums", verify_checksums(node).splitlines()[-1:])
        rto.lap("data checksums")
    else:
        pgdr_measure.record("data checksums", "off in this backup: nothing to verify")

    team_db = next((d for d in restored.databases if d != "postgres"), restored.databases[0])
    results = run_checks(node, checks, team_db)
    age = backup_age(checks, restored.identity.stopped or restored.identity.started)
    results += [age] if age is not None else []
    rto.stop("checks")
    _record(pgdr_measure, results)
    identity = restored.identity.as_dict()  # the backup's identity in JUnit XML too
    request.node.user_properties.extend(
        (f"pgdr_backup_{key}", value) for key, value in identity.items() if key != "extra"
    )
    request.node.user_properties.append(
        ("pgdr_checks", f"{sum(r.ok for r in results)} of {len(results)} passed")
    )

    assert not corrupt, f"amcheck found corrupt btree indexes in the restored backup: {corrupt}"
    failures = [f"{r.name}: {r.detail}" for r in results if not r.ok]
    assert not failures, (
        f"the restored backup of source {pgdr_source.spec.name!r} fails"
        f" {len(failures)} of its {len(results)} checks:\n  " + "\n  ".join(failures)
    )


def _record(measure: Measurement, results: list[CheckResult]) -> None:
    measure.record("checks", {r.name: ("ok: " if r.ok else "FAILED: ") + r.detail for r in results})
    ages = [r.value for r in results if r.name.startswith("data age") and r.value is not None]
    if ages:
        measure.figure("data age", round(max(ages), 1), "s")


def _rooted(request: pytest.FixtureRequest, path: str | None) -> Path | None:
    """A relative checks file: from the current directory, else from the rootdir."""
    if not path:
        return None
    given = Path(path).expanduser()
    return given if given.is_absolute() or given.exists() else request.config.rootpath / given
