"""The HTML report's first screen, from a real nightly history (three runs, one regression),
rendered in headless Chromium at phone and desktop widths."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

PGDR = ("--pgdr", "--pgdr-scenarios=none", "-p", "no:cacheprovider")
REASON = "AssertionError: restored 998 rows of employees, expected 1000"

NIGHTLY = """
import os

import pytest

from pytest_pgdr.basics.clock import Stopwatch

NIGHT = int(os.environ["NIGHT"])


def laps(measure, *readings, names=("restore base backup", "replay WAL", "verify")):
    values = iter(readings)
    measure.rto = Stopwatch.started(clock=lambda: next(values))
    for name in names[:-1]:
        measure.rto.lap(name)
    measure.rto.stop(names[-1])


@pytest.mark.pgdr(rto="10s", rpo=0)
def test_restore_point(pgdr_measure):
    laps(pgdr_measure, 0.0, 2.0, 3.0 + NIGHT, 3.2 + NIGHT)
    pgdr_measure.record_rpo(lost_commits=0)
    if NIGHT == 3:
        assert 998 == 1000, "restored 998 rows of employees, expected 1000"


@pytest.mark.pgdr(rto="5s", rpo=0)
def test_failover_under_load(pgdr_measure):
    laps(pgdr_measure, 0.0, 0.4, 1.1, 1.2, names=("detect", "promote", "first write"))
    pgdr_measure.record_rpo(lost_commits=0, window_s=0.0)
    pgdr_measure.record_outage({"seconds": 1.1, "recovered": True})


@pytest.mark.pgdr(rto="30s")
@pytest.mark.parametrize("target", ["immediate", "xid", "time", "name", "lsn"])
def test_pitr_matrix(pgdr_measure, target):
    laps(pgdr_measure, 0.0, 1.5, 2.5 + 0.1 * NIGHT, 2.6 + 0.1 * NIGHT)
    pgdr_measure.record_throughput(2**28, seconds=1.5)
"""


def nightly_history(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three nights: the third breaks the restore-point drill. Returns the HTML page."""
    pytester.makepyfile(test_nightly=NIGHTLY)
    for night in (1, 2, 3):
        monkeypatch.setenv("NIGHT", str(night))
        extra = ["--pgdr-html=report.html", "--pgdr-history=history"] if night == 3 else []
        result = pytester.runpytest(*PGDR, f"--pgdr-report=history/night{night}.json", *extra)
        result.assert_outcomes(passed=7 if night < 3 else 6, failed=0 if night < 3 else 1)
    return pytester.path / "report.html"


def test_first_screen_says_what_broke_and_since_when(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.setenv("GITHUB_REPOSITORY", "team/db")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    page = nightly_history(pytester, monkeypatch).read_text()
    first_drill = page.index("<section class=drill")
    assert 0 < page.index(REASON) < first_drill  # the reason is on the first screen
    assert page.index("DR not healthy: 1 failed, 0 over budget of 7 drills") < first_drill
    assert page.index("new in this run") < first_drill
    assert "<b>1</b> new failures: test_restore_point" in page
    assert "<b>0</b> still failing" in page and "<b>0</b> fixed" in page
    assert "https://github.example/team/db/actions/runs/4242" in page
    assert "PostgreSQL " not in page or "['" not in page  # plain text, not Python reprs
    assert "False" not in page and "None</td>" not in page
    assert "<details class=passing><summary>6 passing or skipped drills" in page
    assert "commits lost" in page.split("Trends over 3 runs", 1)[1]
    assert "FAILED: nothing measured" in page or "FAILED:" in page  # failed night on the trend
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )


def non_blank(png: bytes) -> bool:
    """More than a handful of distinct byte values in the decoded image data."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data = 8, b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            data += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(data))) > 16


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="headless Chromium is not installed (Debian package 'chromium'); .ci/setup.sh"
    " installs it",
)
@pytest.mark.parametrize("size", ["390,844", "1280,900"])
def test_chromium_renders_the_first_screen(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    page = nightly_history(pytester, monkeypatch)
    shot = pytester.path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            f"--window-size={size}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert non_blank(shot.read_bytes())
