"""Reliability benchmark: what a killed run leaves behind, flakes under load, lost commits.

    python benchmarks/bench_reliability.py [--kills N] [--runs M] [--sync-trials K]
        [--backends local,docker] [--rate 200] [--keep-going]

Prints figures (never a timed test):

1. kills: per backend, N pytest subprocesses running a small drill are SIGKILLed at a random
   moment, cycling through "anywhere" (startup included) and "while a fault is active"
   (freeze on both backends; partition and disk full on Docker). After each kill it polls
   until the run's traces are gone (deadline ``--settle``) and counts what is left: the
   run's postgres processes (and their children), ``/dev/shm/PostgreSQL.*`` segments that
   appeared meanwhile, containers / networks / volumes labelled ``org.pytest-pgdr.run`` whose
   run directory is ours, and run directories;
2. runs: M runs of a small drill selection, serial and with ``-n 2``, under a CPU load
   (``stress-ng`` when installed, else busy Python processes): failed tests (flakes) and the
   same leftovers after each run;
3. sync trials: K times, per backend, a writer at ``--rate`` commits/s on a primary with a
   synchronous replica; the primary is crashed at a random moment, the replica promoted, and
   the acknowledged commits missing from it are counted (must be 0), with the write outage.

Everything runs under its own base directory (``--pgdr-basetemp``), so leftovers are told
apart from other runs on the machine; the ``/dev/shm`` segment count cannot be, and says so.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SELECTION = ["scenarios/test_failover.py", "scenarios/test_switchover.py"]
IMAGE = "pytest-pgdr/pg18:latest"
LABEL = "org.pytest-pgdr.run"
LABEL_RUNDIR = "org.pytest-pgdr.rundir"
MODES = {
    "local": ["anywhere", "freeze"],
    "docker": ["anywhere", "freeze", "partition", "disk_full"],
}

VICTIM = """
import os
import time

import pytest

from pytest_pgdr import Writer, faults


@pytest.mark.pgdr
def test_victim(pgdr):
    mode = os.environ["BENCH_MODE"]
    primary = pgdr.primary(wal_limit="96m" if mode == "disk_full" else None)
    replica = pgdr.replica(primary)
    pgdr.wait_caught_up(primary, replica)
    with Writer(primary, rate=50, max_duration=120, write_timeout=1) as writer:
        writer.wait_for_acks(5)
        fault = {
            "freeze": lambda: faults.freeze(primary),
            "partition": lambda: faults.partition(replica),
            "disk_full": lambda: faults.disk_full(primary),
        }.get(mode)
        if fault is not None:
            fault().start()  # never healed by this process: it is killed first
        open(os.environ["BENCH_MARK"], "w").close()
        end = time.monotonic() + 120
        while time.monotonic() < end:  # busy until killed: queries, not sleeps
            replica.try_scalar("SELECT count(*) FROM pg_stat_activity")
"""


# leftovers ---------------------------------------------------------------------------------
def processes() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command line) of every process."""
    out: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out[int(entry.name)] = (ppid, cmd.strip())
    return out


def leaked_postgres(base: Path) -> int:
    """Postmasters whose data directory is under ``base``, with all their descendants."""
    procs = processes()
    roots = {
        pid
        for pid, (_, cmd) in procs.items()
        if cmd.split(" ", 1)[0].endswith("postgres") and str(base) in cmd
    }
    found, grew = set(roots), True
    while grew:
        kids = {pid for pid, (ppid, _) in procs.items() if ppid in found} - found
        grew = bool(kids)
        found |= kids
    return len(found)


def shm_segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("PostgreSQL.*")}


def docker_leftovers(base: Path) -> dict[str, int]:
    if shutil.which("docker") is None:
        return {}
    counts = {}
    for kind, argv in (
        ("containers", ["docker", "ps", "-a"]),
        ("networks", ["docker", "network", "ls"]),
        ("volumes", ["docker", "volume", "ls"]),
    ):
        proc = subprocess.run(
            [*argv, "--filter", f"label={LABEL}", "--format", f'{{{{.Label "{LABEL_RUNDIR}"}}}}'],
            capture_output=True,
            text=True,
            timeout=60,
        )
        counts[kind] = sum(1 for line in proc.stdout.splitlines() if line.startswith(str(base)))
    return counts


def leftovers(base: Path, shm_before: set[str]) -> dict[str, int]:
    figures = {
        "postgres processes": leaked_postgres(base),
        "new /dev/shm segments": len(shm_segments() - shm_before),
        "run dirs": len(list(base.glob("pgdr-run-*"))),
    }
    figures.update(docker_leftovers(base))
    return figures


def settle(base: Path, shm_before: set[str], deadline_s: float) -> tuple[dict[str, int], float]:
    """Poll until nothing of the run is left (the shm count aside), or the deadline."""
    started = time.monotonic()
    while True:
        left = leftovers(base, shm_before)
        traced = {k: v for k, v in left.items() if k != "new /dev/shm segments"}
        if not any(traced.values()) or time.monotonic() - started > deadline_s:
            return left, time.monotonic() - started
        time.sleep(0.05)  # a script, not a test: a poll interval


# pytest subprocesses ----------------------------------------------------------------------
def subdir(work: Path, prefix: str) -> Path:
    """A new short-named directory (socket paths under it must stay within 107 bytes)."""
    number = len(list(work.glob(f"{prefix}*")))
    path = work / f"{prefix}{number}"
    path.mkdir(mode=0o755)
    return path


def pytest_argv(base: Path, backend: str, *more: str) -> list[str]:
    argv = [sys.executable, "-m", "pytest", "--pgdr", "-p", "no:cacheprovider", "-q"]
    argv += [f"--pgdr-basetemp={base}", f"--pgdr-backend={backend}"]
    if backend == "docker":
        argv.append(f"--pgdr-image={IMAGE}")
    return argv + list(more)


def kill_trial(work: Path, backend: str, mode: str, settle_s: float) -> dict[str, object]:
    base = subdir(work, "k")
    victim = base / "victim" / "test_victim.py"
    victim.parent.mkdir()
    victim.write_text(VICTIM)
    mark = base / "victim" / "fault-active"
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_MARK": str(mark)}
    shm_before = shm_segments()
    output = open(base / "victim" / "output.txt", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        pytest_argv(base, backend, "--pgdr-scenarios=none", "-x", str(victim)),
        cwd=victim.parent,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    started = time.monotonic()
    if mode == "anywhere":
        target = started + random.uniform(0.3, 8.0)
    else:
        while not mark.exists() and proc.poll() is None and time.monotonic() - started < 90:
            time.sleep(0.01)
        target = time.monotonic() + random.uniform(0.0, 1.0)
    while time.monotonic() < target and proc.poll() is None:
        time.sleep(0.005)
    killed_at = time.monotonic() - started
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)  # pytest only: its watchdog has to clean up
    proc.wait()
    output.close()
    early = ""
    if proc.returncode != -signal.SIGKILL:
        lines = (base / "victim" / "output.txt").read_text(errors="replace").splitlines()
        errors = [line for line in lines if line.startswith("E ")] or lines[-3:]
        early = f"exited {proc.returncode} first: {' | '.join(errors[:2])[:160]}"
    left, took = settle(base, shm_before, settle_s)
    return {
        "backend": backend,
        "mode": mode,
        "killed at s": round(killed_at, 2),
        "fault active": mark.exists(),
        "clean after s": round(took, 2),
        **left,
        "note": early,
    }


def full_run(work: Path, backend: str, workers: int, settle_s: float) -> dict[str, object]:
    base = subdir(work, "r")
    junit = base / "junit.xml"
    more = [f"--junitxml={junit}", *(REPO / s for s in SELECTION)]
    if workers > 1:
        more += ["-n", str(workers)]
    shm_before = shm_segments()
    started = time.monotonic()
    proc = subprocess.run(
        pytest_argv(base, backend, *map(str, more)), cwd=REPO, capture_output=True, text=True
    )
    wall = time.monotonic() - started
    failed: list[str] = []
    total = 0
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            total += 1
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
    left, _ = settle(base, shm_before, settle_s)
    return {
        "backend": backend,
        "workers": workers,
        "wall s": round(wall, 1),
        "exit": proc.returncode,
        "tests": total,
        "failed": failed,
        **left,
    }


def cpu_load(count: int) -> list[subprocess.Popen[bytes]]:
    if shutil.which("stress-ng"):
        argv = ["stress-ng", "--cpu", str(count), "--timeout", "3600s", "--quiet"]
        return [subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    spin = [sys.executable, "-c", "while True: pass"]
    return [subprocess.Popen(spin) for _ in range(count)]


# synchronous replication crash trials ------------------------------------------------------
def sync_trials(work: Path, backend: str, count: int, rate: float) -> list[dict[str, object]]:
    from pytest_pgdr import HarnessSession, Settings, Writer

    base = subdir(work, "s")
    settings = Settings(enabled=True, backend=backend, basetemp=str(base), image=(IMAGE,))
    session = HarnessSession(settings)
    spec = "embedded" if backend == "local" else f"docker:{IMAGE}"
    rows = []
    try:
        inst = session.installation(spec)
        for trial in range(count):
            topo = session.topology(inst, f"sync{trial}")
            try:
                primary = topo.primary(archive=False)
                replica = topo.replica(primary, sync=True)
                primary.poll_query(
                    "SELECT sync_state = 'sync' FROM pg_stat_replication",
                    "the replica to be synchronous",
                )
                with Writer(lambda p=primary, r=replica: [p, r], rate=rate) as writer:
                    writer.wait_for_acks(random.randint(20, 200))
                    fault_at = writer.mark_fault()
                    primary.crash()
                    topo.promote(replica)
                    writer.wait_for_acks(1, after=fault_at)
                lost = writer.lost_commits(replica)
                outage = writer.outage()
                rows.append(
                    {
                        "backend": backend,
                        "acknowledged": len(writer.acks),
                        "lost": len(lost),
                        "outage ms": None
                        if outage.seconds is None
                        else round(outage.seconds * 1000, 1),
                        "in-flight acks after the crash": outage.acked_after_fault,
                    }
                )
            except Exception as exc:  # a trial that fails is a figure too
                rows.append({"backend": backend, "error": str(exc).splitlines()[0][:200]})
            finally:
                topo.close()
    finally:
        session.close()
    return rows


# report ------------------------------------------------------------------------------------
def table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "  (none)"
    keys = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[str(row.get(k, "")) for k in keys] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  " + "  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def summary(rows: list[dict[str, object]], keys: list[str]) -> str:
    totals = {k: sum(int(r.get(k, 0) or 0) for r in rows) for k in keys}
    return ", ".join(f"{k}: {v}" for k, v in totals.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=4, help="kills per backend (N)")
    parser.add_argument("--runs", type=int, default=1, help="runs of the selection, each way (M)")
    parser.add_argument("--sync-trials", type=int, default=3, help="crash trials per backend (K)")
    parser.add_argument("--backends", default="local,docker")
    parser.add_argument("--run-backend", default="local", help="backend of the M full runs")
    parser.add_argument("--rate", type=float, default=200.0, help="writer commits/s (K)")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2, help="CPU hogs")
    parser.add_argument("--settle", type=float, default=30.0, help="cleanup deadline, s")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    random.seed(args.seed)
    backends = [b for b in args.backends.split(",") if b]
    shm = Path("/dev/shm")
    # short: a server's socket path (base/run dir/drill/node/sock/.s.PGSQL.port.lock) must
    # stay within 107 bytes
    work = Path(tempfile.mkdtemp(prefix="b", dir=shm if shm.is_dir() else None))
    work.chmod(0o755)
    leftover_keys = [
        "postgres processes",
        "new /dev/shm segments",
        "run dirs",
        "containers",
        "networks",
        "volumes",
    ]
    started = time.monotonic()
    try:
        kills = []
        for backend in backends:
            modes = MODES[backend]
            for i in range(args.kills):
                kills.append(kill_trial(work, backend, modes[i % len(modes)], args.settle))
                print(f"kill {len(kills)}: {kills[-1]}", flush=True)
        runs = []
        hogs = cpu_load(args.load)
        try:
            for _ in range(args.runs):
                for workers in (1, 2):
                    runs.append(full_run(work, args.run_backend, workers, args.settle))
                    print(f"run {len(runs)}: {runs[-1]}", flush=True)
        finally:
            for hog in hogs:
                hog.terminate()
                hog.wait()
        sync = []
        for backend in backends:
            sync += sync_trials(work, backend, args.sync_trials, args.rate)
            print(f"sync {backend}: {sync[-args.sync_trials :]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("\n== kills of a pytest subprocess (SIGKILL), leftovers after the cleanup deadline")
    print(table(kills))
    print("  total: " + summary(kills, leftover_keys))
    print("  (/dev/shm segments are counted machine-wide: other runs on this machine add to it)")
    print(f"\n== full runs of {', '.join(SELECTION)} under {args.load} CPU hogs")
    print(table([{**r, "failed": len(r["failed"])} for r in runs]))  # type: ignore[arg-type]
    flakes = sorted({t for r in runs for t in r["failed"]})  # type: ignore[attr-defined]
    print(f"  failed tests: {len(flakes)} {flakes if flakes else ''}")
    print("  total: " + summary(runs, leftover_keys))
    print(f"\n== synchronous replication crash trials at {args.rate:g} commits/s")
    print(table(sync))
    ok = [r for r in sync if "lost" in r]
    lost = sum(int(r["lost"]) for r in ok)  # type: ignore[call-overload]
    outages = [float(r["outage ms"]) for r in ok if r.get("outage ms") is not None]  # type: ignore[arg-type]
    median = f", median outage {statistics.median(outages):.0f} ms" if outages else ""
    print(f"  trials: {len(sync)}, failed: {len(sync) - len(ok)}, commits lost: {lost}{median}")
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
