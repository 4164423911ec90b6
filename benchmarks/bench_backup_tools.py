"""A restore through the harness vs the backup tool's own restore command run by hand.

    python benchmarks/bench_backup_tools.py [--postgres 15] [--tool pgbackrest,barman,plain]
                                            [--size 64] [--runs 3]

For each tool, one primary loaded with ``--size`` MB, one backup through the tool, a little
more WAL; then, alternately, ``tool.restore(backup)`` (the drill's path: the tool's info,
its restore command, start, replay to the end, promotion) and a shell script doing the same by
hand (the tool's restore command, a port, ``postgres -D``, a psql loop until promoted). Prints
the medians and the ratio (the issue's budget: harness overhead at most 5 % for 1 GB). Where
the harness verifies a backup before restoring it (Barman, plain: their restore copies files
unchecked), the script runs the same verify command.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

from pytest_pgdr import HarnessSession, Node, RecoveryTarget, Settings, Topology
from pytest_pgdr.backup import BackupTool, ToolBackup, ToolUnavailable, backup_tool

PAD = (
    "INSERT INTO bench SELECT g, repeat(md5(g::text), 30) FROM generate_series(%s::int, %s::int) g"
)
ROW_BYTES = 1000  # about, with the tuple header


def load(primary: Node, megabytes: int) -> None:
    primary.query("CREATE TABLE bench (id int PRIMARY KEY, pad text NOT NULL)")
    rows = megabytes * 1024 * 1024 // ROW_BYTES
    for first in range(1, rows + 1, 100_000):
        primary.query(PAD, [first, min(first + 99_999, rows)])


def by_hand_commands(tool: BackupTool, topo: Topology, backup: ToolBackup, datadir: Path) -> str:
    """The tool's own restore command, as a person would type it."""
    bin_dir = topo.inst.bindir
    if tool.name == "pgbackrest":
        config = topo.root / "pgbackrest" / "pgbackrest.conf"
        return (
            f"pgbackrest --config={config} --stanza=pgdr --pg1-path={datadir}"
            f" --set={backup.id} --type=default restore"
        )
    if tool.name == "barman":
        config = topo.root / "barman" / "barman.conf"
        return (
            f"barman -c {config} verify-backup pgdr {backup.id} >/dev/null\n"
            f"barman -c {config} recover pgdr {backup.id} {datadir} >/dev/null"
        )
    source = topo.archive.backups / backup.id
    wal = topo.archive.wal
    return (
        f"{bin_dir}/pg_verifybackup -n -q {source}\n"
        f"rmdir {datadir} && cp -a {source} {datadir}\n"
        f"echo \"restore_command = 'cp {wal}/%f %p'\" >> {datadir}/postgresql.auto.conf\n"
        f"touch {datadir}/recovery.signal"
    )


def by_hand_script(tool: BackupTool, topo: Topology, backup: ToolBackup, run: int) -> str:
    """The restore a person runs: the tool's command, the restored configuration with this
    server's own port and socket appended (later lines win), start, wait for promotion."""
    work = topo.root / f"hand{run}"
    datadir, sock = work / "data", work / "sock"
    port = topo.host.run_dir.claim_port()
    bindir = topo.inst.bindir
    psql = f"{bindir}/psql -X -h {sock} -p {port} -U postgres -d postgres -tAc"
    conf = (
        f"port = {port}\\nunix_socket_directories = '{sock}'\\nlisten_addresses = ''\\n"
        "archive_mode = off\\n"
    )
    return f"""set -e
mkdir -m 700 -p {datadir} {sock}
{by_hand_commands(tool, topo, backup, datadir)}
rm -f {datadir}/postmaster.pid {datadir}/standby.signal
printf "{conf}" >> {datadir}/pgdr.conf
{bindir}/postgres -D {datadir} </dev/null >{work}/postgres.log 2>&1 &
echo $! > {work}/pid
until [ "$({psql} 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; do
  kill -0 $(cat {work}/pid) || {{ tail {work}/postgres.log; exit 1; }}
  sleep 0.003
done
"""


def stop_by_hand(topo: Topology, run: int) -> None:
    """Stop the by-hand server and drop its files (a 1 GB run keeps memory in /dev/shm)."""
    work = topo.root / f"hand{run}"
    pg_ctl = topo.inst.bindir / "pg_ctl"
    topo.host.run([str(pg_ctl), "-D", str(work / "data"), "stop", "-m", "immediate", "-w"])
    shutil.rmtree(work, ignore_errors=True)


def bench_tool(session: HarnessSession, spec: str, name: str, size: int, runs: int) -> None:
    topo = session.topology(session.installation(spec), f"bench_{name}")
    try:
        tool = backup_tool(name, topo)
        primary = topo.primary()
        tool.attach(primary)
        load(primary, size)
        backup = tool.backup(primary)
        primary.query(PAD, [10_000_001, 10_001_000])
        tool.wait_archived(primary)
        harness, hand = [], []
        for run in range(runs):
            started = time.perf_counter()
            node = tool.restore(backup, RecoveryTarget.latest(), settings={"archive_mode": "off"})
            harness.append(time.perf_counter() - started)
            node.stop("immediate")
            shutil.rmtree(node.datadir, ignore_errors=True)
            script = by_hand_script(tool, topo, backup, run)
            started = time.perf_counter()
            proc = topo.host.run(["bash", "-c", script], timeout=600)
            hand.append(time.perf_counter() - started)
            stop_by_hand(topo, run)
            if proc.returncode != 0:
                sys.exit(f"by-hand restore through {name} failed:\n{proc.stdout}{proc.stderr}")
        h, b = statistics.median(harness), statistics.median(hand)
        print(
            f"  {name:<11} {tool.version():<8} backup {backup.size / 2**20:7.1f} MiB"
            f"   harness {h:7.3f} s   by hand {b:7.3f} s   harness / by hand {h / b:5.2f} x"
        )
    except ToolUnavailable as exc:
        print(f"  {name:<11} skipped: {exc.what}")
    finally:
        topo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--postgres", default="15")
    parser.add_argument("--tool", default="pgbackrest,barman,plain")
    parser.add_argument("--size", type=int, default=64, help="MB of table data (default 64)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    session = HarnessSession(Settings(enabled=True, postgres=(args.postgres,)))
    try:
        inst = session.installation(args.postgres)
        print(
            f"pytest-pgdr backup-tool restore benchmark: {inst.describe()}, {args.size} MB,"
            f" median of {args.runs} runs, data in {session.base}"
        )
        for name in args.tool.split(","):
            bench_tool(session, args.postgres, name.strip(), args.size, args.runs)
    finally:
        session.close()


if __name__ == "__main__":
    main()
