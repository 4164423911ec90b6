"""The nightly restore of a real backup through the harness vs the same tools run by hand.

    python benchmarks/bench_sources.py [--postgres 15] [--size 1024] [--runs 1]

Builds, with the raw tools, a ``--size`` MB database, a ``pg_dump -Fc`` of it and a
``pg_basebackup`` plus its WAL archive (with more WAL written after the backup). Then, in one
run, each source is restored alternately through the harness (``restore_nightly``: open the
backup, pick the installation, check it, restore, replay, promote) and by hand with the same
tools (``pg_restore -j 2`` into a started scratch server; ``cp``, a restore_command,
``postgres -D`` and a psql loop until promoted). Prints the medians, the harness overhead
ratio (the issue's budget: at most 5 % for 1 GB) and the verification throughput (every
relation read once, MB/s).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import time
from pathlib import Path

from pytest_pgdr import HarnessSession, Node, Settings, Stopwatch, Topology
from pytest_pgdr.drill.measure import Measurement
from pytest_pgdr.sources import NightlySource, parse_spec, restore_nightly
from pytest_pgdr.sources.verify import read_every_relation

PAD = (
    "INSERT INTO bench SELECT g, repeat(md5(g::text), 30) FROM generate_series(%s::int, %s::int) g"
)
ROW_BYTES = 1000
PHASES: list[str] = []  # the harness's own laps, run after run


def build(topo: Topology, megabytes: int) -> tuple[Path, Path, Path]:
    """A dump, a base backup and its WAL archive, made with the raw tools."""
    out = topo.host.make_dir(topo.root / "backups", 0o755)
    wal = topo.host.make_dir(out / "wal", 0o755)
    command = f"cp %p {shlex.quote(str(wal))}/%f"
    node = topo.primary(
        name="team", archive=False, settings={"archive_mode": "on", "archive_command": command}
    )
    node.query("CREATE DATABASE app")
    node.query("CREATE TABLE bench (id int PRIMARY KEY, pad text NOT NULL)", dbname="app")
    rows = megabytes * 1024 * 1024 // ROW_BYTES
    for first in range(1, rows + 1, 100_000):
        node.query(PAD, [first, min(first + 99_999, rows)], dbname="app")
    node.run_tool("pg_dump", "-Fc", "-Z", "0", "-f", out / "app.dump", "-d", "app", timeout=3600)
    node.run_tool("pg_basebackup", "-D", out / "base", "-X", "none", "-c", "fast", timeout=3600)
    node.query(PAD, [rows + 1, rows + 5000], dbname="app")
    last = node.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
    node.query("SELECT pg_switch_wal()")
    node.poll_query(f"SELECT last_archived_wal >= '{last}' FROM pg_stat_archiver", "archived")
    node.stop()
    return out / "app.dump", out / "base", wal


def by_hand(topo: Topology, kind: str, source: Path, wal: Path, run: int) -> float:
    """The same restore typed by a person; seconds from the first command to a usable server."""
    work = topo.host.make_dir(topo.root / f"hand_{kind}{run}", 0o700)
    data, sock = work / "data", topo.host.make_dir(work / "sock")
    port = topo.host.run_dir.claim_port()
    b = topo.inst.bindir
    psql = f"{b}/psql -X -h {sock} -p {port} -U postgres -d postgres -tAc"
    # the sandbox's own settings (fsync off, 32MB shared_buffers: --pgdr-fsync's default),
    # so both sides pay for the same server
    same = "-c fsync=off -c shared_buffers=32MB -c max_wal_size=1GB -c wal_level=replica"
    start = f"{b}/postgres -D {data} {same} -c port={port} -c unix_socket_directories={sock}"
    start += f" -c listen_addresses='' </dev/null >{work}/log 2>&1 & echo $! > {work}/pid"
    wait = (
        f"until [ \"$({psql} 'SELECT pg_is_in_recovery()' 2>/dev/null)\" = f ]; do"
        f" kill -0 $(cat {work}/pid) || {{ tail {work}/log; exit 1; }}; sleep 0.003; done"
    )
    if kind == "dump":
        # with data checksums, as the sandbox's template has them (and PostgreSQL 18's initdb
        # by default): hint bits set while indexes are built are then WAL-logged on both sides
        prepare = f"{b}/initdb -D {data} -U postgres -A trust -k --no-sync >/dev/null"
        topo.host.run(["bash", "-c", prepare])
        timed = (
            f"{start}\n{wait}\n{psql} 'CREATE DATABASE app'\n"
            f"{b}/pg_restore -j 2 -h {sock} -p {port} -U postgres -d app {source}"
        )
    else:
        restore = f"cp {wal}/%f %p"
        timed = (
            f"cp -R {source} {data} && chmod 700 {data}\n"
            f"echo \"restore_command = '{restore}'\" >> {data}/postgresql.auto.conf\n"
            f"touch {data}/recovery.signal\n{start}\n{wait}"
        )
    started = time.perf_counter()
    proc = topo.host.run(["bash", "-c", "set -e\n" + timed], timeout=3600)
    seconds = time.perf_counter() - started
    topo.host.run([str(b / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate", "-w"])
    if proc.returncode != 0:
        raise SystemExit(f"by-hand {kind} restore failed:\n{proc.stdout}{proc.stderr}")
    topo.host.run(["rm", "-rf", str(work)])
    return seconds


def through_harness(
    session: HarnessSession, spec: str, value: str, run: int
) -> tuple[float, float, Node, Topology]:
    """(restore seconds, verification MB/s) through the harness, and the sandbox."""
    kind, _, rest = value.partition(":")
    source = NightlySource(parse_spec(f"bench{run}", kind, rest))
    inst = session.installation(spec)
    made: list[Topology] = []

    def make(_: str) -> Topology:
        made.append(session.topology(inst, f"bench_{kind}{run}"))
        return made[-1]

    measure = Measurement()
    started = time.perf_counter()
    watch = Stopwatch.started()
    restored, _ = restore_nightly(source, [(spec, inst)], make, watch, measure)
    seconds = time.perf_counter() - started
    PHASES.append(", ".join(f"{name} {sec:.2f} s" for name, sec in watch.phases().items()))
    read = read_every_relation(restored.node, ("app",))
    return seconds, read.rate / 2**20, restored.node, made[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--postgres", default="15")
    parser.add_argument("--size", type=int, default=1024, help="MB of table data (default 1024)")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    session = HarnessSession(Settings(enabled=True, postgres=(args.postgres,)))
    try:
        inst = session.installation(args.postgres)
        print(
            f"pytest-pgdr nightly-restore benchmark: {inst.describe()}, {args.size} MB,"
            f" median of {args.runs} run(s), data in {session.base}"
        )
        topo = session.topology(inst, "bench_sources")
        dump, base, wal = build(topo, args.size)
        sources = {
            "dump": (f"dump:{dump}", dump),
            "basebackup": (f"basebackup:{base}?wal={wal}", base),
        }
        for kind, (value, path) in sources.items():
            harness, hand, rates = [], [], []
            for run in range(args.runs):
                seconds, rate, node, sandbox = through_harness(session, args.postgres, value, run)
                harness.append(seconds)
                rates.append(rate)
                sandbox.close()
                hand.append(by_hand(topo, kind, path, wal, run))
            h, m = statistics.median(harness), statistics.median(hand)
            print(
                f"  {kind:<10}  harness {h:8.2f} s   by hand {m:8.2f} s   overhead"
                f" {100 * (h / m - 1):+6.1f} %   verify {statistics.median(rates):7.1f} MB/s"
                f"\n              harness laps (last run): {PHASES[-1]}"
            )
        topo.close()
    finally:
        session.close()


if __name__ == "__main__":
    main()
