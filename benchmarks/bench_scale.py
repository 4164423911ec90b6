"""Drills at scale: the dataset's load against the server's own speed, and a 50M-row fingerprint.

    python benchmarks/bench_scale.py [--scale 300] [--rows 50000000] [--postgres 15]

1. Loads ``Dataset(scale)`` (300 is about a gigabyte) the way drills do, and, in the same run
   on the same server, the floor: the same ``INSERT ... SELECT`` statements into bare tables
   (no keys, no indexes, no foreign key), which is how fast the server itself writes those rows.
   Prints both in MB/s and their ratio; alternates the two ``--repeat`` times.
2. Makes one table of ``--rows`` rows (``CREATE TABLE AS ... generate_series``) and
   fingerprints it: it must finish without error and count exactly ``--rows`` rows (the old
   string_agg form failed at 34 million). Printed beside the per-row md5 floor on that table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from pytest_pgdr import HarnessSession, Node, Settings
from pytest_pgdr.drill.dataset import CONSTRAINTS, Dataset
from pytest_pgdr.drill.fingerprint import fingerprint

BIG_DB = "bench_big"


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def floor_load(dataset: Dataset, node: Node, dbname: str) -> None:
    """The dataset's own data statements into bare tables: the server's speed, no extras."""
    node.query(f'CREATE DATABASE "{dbname}"')
    with node.connect(dbname, autocommit=False) as conn, conn.transaction():
        for stmt in dataset.statements():
            if stmt.sql is not CONSTRAINTS:
                conn.execute(stmt.sql, stmt.params or None)


def load_vs_floor(node: Node, scale: float, repeat: int) -> None:
    dataset = Dataset(scale=scale)
    assert dataset.pool.first  # faker's pool is made once, outside the timings
    loads, floors, size = [], [], 0
    for i in range(repeat):
        floors.append(seconds(lambda i=i: floor_load(dataset, node, f"floor{i}")))
        loads.append(seconds(lambda i=i: dataset.load(node, f"load{i}")))
        size = int(node.scalar("SELECT pg_database_size(%s)", [f"load{i}"]))
        for db in (f"floor{i}", f"load{i}"):
            node.query(f'DROP DATABASE "{db}"')
        node.query("CHECKPOINT")
    load, floor = statistics.median(loads), statistics.median(floors)
    mb = size / 2**20
    print(f"dataset scale {scale:g}: {mb:.0f} MB, {sum(dataset.counts.values()):,} rows")
    print(f"  server floor (INSERT ... SELECT, bare)  {floor:8.2f} s  {mb / floor:6.1f} MB/s")
    print(f"  Dataset.load (keys, index, FK after)    {load:8.2f} s  {mb / load:6.1f} MB/s")
    print(f"  ratio to the floor                      {load / floor:8.2f}x")


def big_table(node: Node, rows: int) -> None:
    node.query(f'CREATE DATABASE "{BIG_DB}"')
    made = seconds(
        lambda: node.query(
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v"
            " FROM generate_series(1, %s::bigint) g",
            [rows],
            dbname=BIG_DB,
        )
    )
    node.query("VACUUM ANALYZE big", dbname=BIG_DB)
    floor = seconds(
        lambda: node.query("SELECT sum(length(md5(t::text))) FROM big t", dbname=BIG_DB)
    )
    started = time.perf_counter()
    fp = fingerprint(node, BIG_DB, jobs=1)
    took = time.perf_counter() - started
    counted = fp.tables["public.big"].rows
    if counted != rows:
        raise SystemExit(f"FAILED: the fingerprint counted {counted:,} rows, not {rows:,}")
    print(f"table of {rows:,} rows (made in {made:.1f} s)")
    print(f"  per-row md5 floor                       {floor:8.2f} s")
    print(f"  fingerprint                             {took:8.2f} s  ({took / floor:.2f}x)")
    print(f"  counted {counted:,} rows, digest {fp.tables['public.big'].digest}: OK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=300.0)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--postgres", default="embedded")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    session = HarnessSession(Settings(enabled=True))
    topo = session.topology(session.installation(args.postgres), "bench_scale")
    try:
        node = topo.primary(archive=False)
        if args.scale > 0:
            load_vs_floor(node, args.scale, args.repeat)
        if args.rows > 0:
            big_table(node, args.rows)
    finally:
        topo.close()
        session.close()


if __name__ == "__main__":
    main()
