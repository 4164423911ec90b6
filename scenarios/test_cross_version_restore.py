"""Runbook: restore a logical dump of PostgreSQL 15 into PostgreSQL 18 (guide: "Need to
restore to different PG version? -> Logical backup").

The dump is taken with the NEWER version's ``pg_dump`` (18) connected to the old server (15),
as PostgreSQL's documentation recommends for moving data to a newer major version: a newer
pg_dump knows how to read older catalogs and writes what the newer server expects. The dump
header must say so ("dumped from 15, by pg_dump 18").

It needs both installations at once, so it runs once per session (it asks ``pgdr_session`` for
them, not ``pgdr_install``) and is skipped, naming what is missing, when either is absent.

PostgreSQL 18 records NOT NULL as named constraints in ``pg_constraint`` and 15 does not, so
those entries are compared as "which columns are NOT NULL" instead; everything else (rows,
content hashes, sequences, other constraints, indexes, large objects) must be identical.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_pgdr import (
    Fingerprint,
    HarnessSession,
    Installation,
    MissingBinaryError,
    Node,
    ToolError,
    Topology,
    Unavailable,
    assert_same,
    fingerprint,
)
from pytest_pgdr.drill.dataset import Dataset
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.drill.verify import assert_indexes_ok

pytestmark = pytest.mark.pgdr

# installation specs (as for --pgdr-postgres), or images on the docker backend
SPECS = {
    "local": ("15", "embedded"),
    "docker": ("docker:pytest-pgdr/pg15:latest", "docker:pytest-pgdr/pg18:latest"),
}
DB = "shop"
NOT_NULL_SQL = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = 'public' AND is_nullable = 'NO' ORDER BY 1, 2
"""


@pytest.fixture
def dataset(pgdr_dataset: Dataset) -> Dataset:
    """The data this drill protects (override ``pgdr_dataset`` in conftest.py)."""
    return pgdr_dataset


def installations(session: HarnessSession) -> tuple[Installation, Installation]:
    """The old and the new installation, or a skip that says which one is missing."""
    found: dict[str, Installation] = {}
    missing: list[str] = []
    OLD, NEW = SPECS[session.settings.backends[0]]  # noqa: N806
    for spec in (OLD, NEW):
        try:
            found[spec] = session.installation(spec)
        except MissingBinaryError as exc:
            missing.append(f"{spec!r} ({exc.what})")
    if missing:
        raise Unavailable(  # a skip with this reason, a failure in strict mode (CI)
            f"Cross-version restore needs PostgreSQL installations {OLD!r} and {NEW!r}",
            f"missing: {', '.join(missing)}",
            "Install the older one (Debian: postgresql-15) or pass it with --pgdr-postgres",
        )
    old, new = found[OLD], found[NEW]
    if old.major >= new.major:
        pytest.skip(f"{old.describe()} is not older than {new.describe()}")
    return old, new


def dump_old_server(old: Node, new: Node, old_topo: Topology, dump: str) -> Installation:
    """Dump the old server, preferably with the newer pg_dump (PostgreSQL's advice).

    Where the new installation's tools cannot reach the old server (containers of two
    topologies share no network), the old server's own pg_dump makes the dump, which is then
    handed to the new topology. Returns the installation whose pg_dump was used.
    """
    with contextlib.suppress(ToolError):
        new.run_tool("pg_dump", "-Fc", "-f", dump, "-d", DB, env=old.tool_env(), timeout=60)
        return new.inst
    staged = old_topo.host.make_dir(old_topo.root / "dumps") / Path(dump).name
    old.run_tool("pg_dump", "-Fc", "-f", staged, "-d", DB)
    new.host.write_bytes(Path(dump), old_topo.host.read_bytes(staged))
    return old.inst


def comparable(fp: Fingerprint) -> Fingerprint:
    """The fingerprint without NOT NULL entries of pg_constraint (PostgreSQL 18+ only)."""
    kept = {k: v for k, v in fp.constraints.items() if not v.startswith("NOT NULL ")}
    return replace(fp, constraints=kept)


def dump_header(node: Node, dump: str) -> tuple[str, str]:
    """(dumped from database version, dumped by pg_dump version) of a custom-format dump."""
    listing = node.run_tool("pg_restore", "-l", dump).stdout
    source = re.search(r"Dumped from database version: (\S+)", listing)
    tool = re.search(r"Dumped by pg_dump version: (\S+)", listing)
    assert source and tool, f"no version lines in the dump header:\n{listing[:600]}"
    return source.group(1), tool.group(1)


def test_dump_15_restore_18(
    pgdr_session: HarnessSession, dataset: Dataset, pgdr_measure: Measurement
) -> None:
    old_inst, new_inst = installations(pgdr_session)
    pgdr_measure.context["postgres"] = f"{old_inst.label} -> {new_inst.label}"
    pgdr_measure.context["backend"] = "docker" if old_inst.image else "local"
    with (
        pgdr_session.topology(old_inst, "xver_old") as old_topo,
        pgdr_session.topology(new_inst, "xver_new") as new_topo,
    ):
        old = old_topo.primary(archive=False)
        dataset.load(old, DB)
        expected = fingerprint(old, DB)
        new = new_topo.primary(archive=False)
        dump = str(new_topo.host.make_dir(new_topo.root / "dumps") / "shop-15.dump")

        rto = pgdr_measure.declare_disaster()
        dumper = dump_old_server(old, new, old_topo, dump)
        rto.lap(f"pg_dump {dumper.major} of the {old_inst.major} server")
        new.run_tool("pg_restore", "--create", "-d", "postgres", dump)
        rto.lap(f"restore into {new_inst.major}")
        actual = fingerprint(new, DB)
        rto.stop("verify")

        assert dump_header(new, dump) == (
            old.scalar("SHOW server_version").split()[0],
            dumper.version,
        )
        assert_same(
            comparable(expected),
            comparable(actual),
            f"{DB} from PostgreSQL {old_inst.major} restored into {new_inst.major}",
        )
        assert new.query(NOT_NULL_SQL, dbname=DB) == old.query(NOT_NULL_SQL, dbname=DB)
        assert {t: actual.rows(t) for t in dataset.tables} == {
            f"public.{t}": n for t, n in dataset.counts.items()
        }
        assert int(new.scalar("SHOW server_version_num")) // 10000 == new_inst.major
        assert_indexes_ok(new, DB)
