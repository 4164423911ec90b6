"""fingerprint() against the floors it cannot beat, on the same data in one run.

Prints, per run, the seconds for: a sequential count(*) of every table (the scan), the per-row
md5 of every table summed (the hashing floor), and fingerprint() with 1 and 2 jobs, with the
ratio to the md5 floor. Usage: python benchmarks/bench_fingerprint.py [--scale 20] [--postgres 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from pytest_pgdr import HarnessSession, Node, Settings
from pytest_pgdr.drill.dataset import Dataset
from pytest_pgdr.drill.fingerprint import TABLES_SQL, fingerprint

DB = "bench"


def timed(action: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def each_table(node: Node, sql: str) -> Callable[[], None]:
    tables = [str(name) for name, _ in node.query(TABLES_SQL, dbname=DB)]

    def run() -> None:
        for table in tables:
            node.query(sql.format(table=table), dbname=DB)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--postgres", default="embedded")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    session = HarnessSession(Settings(enabled=True))
    topo = session.topology(session.installation(args.postgres), "bench_fp")
    try:
        node = topo.primary(archive=False)
        started = time.perf_counter()
        Dataset(scale=args.scale).load(node, DB)
        size = int(node.scalar("SELECT pg_database_size(%s)", [DB]))
        print(
            f"dataset scale {args.scale:g}: {size / 2**20:.1f} MB loaded in"
            f" {time.perf_counter() - started:.2f} s"
        )
        node.query("VACUUM ANALYZE", dbname=DB)
        scan = timed(each_table(node, "SELECT count(*) FROM {table}"), args.repeat)
        floor = timed(
            each_table(node, "SELECT sum(length(md5(t::text))) FROM {table} t"), args.repeat
        )
        one = timed(lambda: fingerprint(node, DB, jobs=1), args.repeat)
        two = timed(lambda: fingerprint(node, DB, jobs=2), args.repeat)
        print(f"scan (count(*))            {scan:8.3f} s")
        print(f"per-row md5 floor          {floor:8.3f} s")
        print(f"fingerprint, 1 job         {one:8.3f} s  ({one / floor:.2f}x the md5 floor)")
        print(f"fingerprint, 2 jobs        {two:8.3f} s  ({two / floor:.2f}x the md5 floor)")
    finally:
        topo.close()
        session.close()


if __name__ == "__main__":
    main()
