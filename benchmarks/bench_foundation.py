"""Benchmarks of the foundation (prints figures; never a timed test).

    python benchmarks/bench_foundation.py [--postgres embedded] [--runs 7]

Medians of: a node ready to query; a primary plus a caught-up streaming replica; the PITR
drill through the harness; the same PITR steps as a raw shell script (raw_pitr.sh), and the
ratio of the last two.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pytest_pgdr import HarnessSession, RecoveryTarget, Settings, Topology, fingerprint
from pytest_pgdr.cluster.template import ensure_template

HERE = Path(__file__).parent
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
INSERT = (
    "INSERT INTO employees (full_name, dept, salary) SELECT 'Employee ' || g,"
    " (ARRAY['IT','Finance','HR','Ops'])[mod(g, 4) + 1], 1000 + g"
    " FROM generate_series(%s::int, %s::int) g"
)


def node_ready(topo: Topology) -> None:
    node = topo.primary(archive=False)
    node.scalar("SELECT 1")


def primary_and_replica(topo: Topology) -> None:
    primary = topo.primary(archive=False)
    replica = topo.replica(primary)
    topo.wait_caught_up(primary, replica)


def pitr_drill(topo: Topology) -> None:
    primary = topo.primary()
    primary.psql(EMPLOYEES)
    backup = topo.backup(primary)
    primary.query(INSERT, [1, 1000])
    primary.scalar("SELECT pg_create_restore_point('before_delete')")
    expected = fingerprint(primary)
    primary.query(INSERT, [1001, 1500])
    primary.query("DELETE FROM employees WHERE dept = 'Finance'")
    topo.wait_archived(primary)
    restored = topo.restore(backup, RecoveryTarget.name("before_delete"))
    actual = fingerprint(restored)
    assert actual.tables == expected.tables and actual.rows("public.employees") == 1003


def timed(session: HarnessSession, spec: str, step: Callable[[Topology], None], runs: int) -> float:
    inst = session.installation(spec)
    samples = []
    for _ in range(runs):
        topo = session.topology(inst, step.__name__)
        started = time.perf_counter()
        try:
            step(topo)
            samples.append(time.perf_counter() - started)
        finally:
            topo.close()
    return statistics.median(samples)


def raw_script(session: HarnessSession, spec: str, runs: int) -> float:
    inst = session.installation(spec)
    template = ensure_template(inst, session.user, session.cache)
    script = session.run.path / "raw_pitr.sh"
    shutil.copy(HERE / "raw_pitr.sh", script)
    script.chmod(0o755)
    samples = []
    for i in range(runs):
        work = session.host.make_dir(session.run.path / f"raw{i}")
        ports = [session.run.claim_port(), session.run.claim_port()]
        argv = [
            "bash",
            str(script),
            str(inst.bindir),
            str(template),
            str(work / "w"),
            *map(str, ports),
        ]
        started = time.perf_counter()
        proc = session.host.run(argv, timeout=120)
        samples.append(time.perf_counter() - started)
        if proc.returncode != 0:
            sys.exit(f"raw_pitr.sh failed: {proc.stderr}")
        shutil.rmtree(work, ignore_errors=True)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="embedded")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    session = HarnessSession(Settings(enabled=True, postgres=(args.postgres,)))
    try:
        inst = session.installation(args.postgres)
        timed(session, args.postgres, node_ready, 1)  # warm the template cache
        print(
            f"pytest-pgdr foundation benchmark: {inst.describe()}, data in {session.base},"
            f" median of {args.runs} runs"
        )
        ready = timed(session, args.postgres, node_ready, args.runs)
        pair = timed(session, args.postgres, primary_and_replica, args.runs)
        drill = timed(session, args.postgres, pitr_drill, args.runs)
        raw = raw_script(session, args.postgres, args.runs)
        print(f"  node ready to query            {ready:7.3f} s   (target <= 0.25 s)")
        print(f"  primary + caught-up replica    {pair:7.3f} s   (target <= 0.80 s)")
        print(f"  PITR drill (harness)           {drill:7.3f} s")
        print(f"  PITR steps (raw tools script)  {raw:7.3f} s")
        print(f"  harness / raw                  {drill / raw:7.2f} x   (target <= 1.15 x)")
    finally:
        session.close()


if __name__ == "__main__":
    main()
