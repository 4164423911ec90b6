"""Benchmark of the built-in drill suite (prints figures; never a timed test).

    python benchmarks/bench_suite.py [--backend local] [--workers 2] [pytest args...]

Runs every built-in drill on the embedded PostgreSQL 18 and Debian's 15 (when installed) with
pytest-xdist, then prints the whole suite's wall time (target on 2 cores: <= 90 s for the local
backend with -n 2) and each drill's own time per installation, slowest first.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

TARGET_S = 90.0


def run_suite(backend: str, workers: int, extra: list[str], junit: Path) -> tuple[float, int]:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--pgdr",
        "--pyargs",
        "pytest_pgdr.scenarios",
        "-p",
        "no:cacheprovider",
        "-q",
        "-n",
        str(workers),
        f"--pgdr-backend={backend}",
        f"--junitxml={junit}",
        *extra,
    ]
    if backend == "local" and Path("/usr/lib/postgresql/15/bin/postgres").exists():
        argv += ["--pgdr-postgres", "embedded", "--pgdr-postgres", "15"]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=tempfile.gettempdir(), capture_output=True, text=True)
    return time.perf_counter() - started, proc.returncode


def per_drill(junit: Path) -> list[tuple[float, str, str]]:
    rows = []
    for case in ET.parse(junit).iter("testcase"):
        outcome = (
            "skipped"
            if case.find("skipped") is not None
            else (
                "failed"
                if case.find("failure") is not None or case.find("error") is not None
                else "passed"
            )
        )
        rows.append((float(case.get("time", 0)), case.get("name", ""), outcome))
    return sorted(rows, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local")
    parser.add_argument("--workers", type=int, default=2)
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "suite.xml"
        wall, code = run_suite(args.backend, args.workers, extra, junit)
        rows = per_drill(junit)
    print(
        f"built-in drills, backend {args.backend}, -n {args.workers}: {len(rows)} tests,"
        f" exit code {code}"
    )
    print(f"  whole suite wall time  {wall:6.1f} s   (target <= {TARGET_S:.0f} s, local -n 2)")
    print(f"  sum of drill times     {sum(r[0] for r in rows):6.1f} s")
    for seconds, name, outcome in rows:
        print(f"  {seconds:6.2f} s  {name}{'' if outcome == 'passed' else '  [' + outcome + ']'}")
    sys.exit(code)


if __name__ == "__main__":
    main()
