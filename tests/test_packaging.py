"""Packaging cannot miss a subpackage: setuptools' own view of the distribution (setup.py and
pyproject.toml, read the way a build reads them) lists every folder of ``pytest_pgdr`` that has
an ``__init__.py``, and the built-in drills as ``pytest_pgdr.scenarios``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_pgdr

ROOT = Path(pytest_pgdr.__file__).resolve().parent.parent
ASK_SETUPTOOLS = """
import json
from distutils.core import run_setup
dist = run_setup("setup.py", stop_after="config")
print(json.dumps({"packages": dist.packages, "package_dir": dist.package_dir}))
"""

pytestmark = pytest.mark.skipif(
    not (ROOT / "setup.py").is_file(), reason="needs a source checkout (setup.py)"
)


def distribution() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", ASK_SETUPTOOLS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_every_subpackage_and_the_scenarios_are_in_the_distribution() -> None:
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "pytest_pgdr").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    dist = distribution()
    packages = set(dist["packages"])  # type: ignore[call-overload]
    assert on_disk - packages == set(), "subpackages missing from the distribution"
    assert "pytest_pgdr.scenarios" in packages
    assert dist["package_dir"] == {"pytest_pgdr.scenarios": "scenarios"}
    assert (ROOT / "scenarios" / "__init__.py").is_file()
