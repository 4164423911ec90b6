"""Where the built-in drills are, and how they join a run.

They are installed as ``pytest_pgdr.scenarios``, which in a team's repository usually sits in a
virtualenv inside the repository (``.venv/lib/.../site-packages``). pytest merges a collection
argument that lies under another one into it, and never recurses into a virtualenv: the drills
would silently vanish from ``pytest --pgdr`` run at the repository's top. So the path from the
virtualenv down to the drills is let through (the rest of the virtualenv stays ignored), and
the drills are added as an argument only when no argument holds them already.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

VENV_MARKERS = ("pyvenv.cfg", "conda-meta")


def scenarios_dir() -> Path:
    """Where the built-in drills are: the installed ``pytest_pgdr.scenarios``, or the
    top-level ``scenarios/`` of a source checkout (whose ``pytest_pgdr`` has no such package)."""
    try:
        spec = importlib.util.find_spec("pytest_pgdr.scenarios")
    except ImportError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent.parent / "scenarios"


def add_scenarios(config: pytest.Config, mode: str) -> None:
    """``only``: just the built-in drills; ``builtin``: they join runs over directories, not
    runs that name test files or ids."""
    where = scenarios_dir()
    if mode == "only":
        config.args[:] = [str(where)]
        return
    names_files = any("::" in arg or arg.endswith(".py") for arg in config.args)
    named = any(Path(a).resolve() == where.resolve() for a in config.args if Path(a).exists())
    if names_files or named:
        return
    venv = venv_holding(where)
    if venv is not None:
        config.pluginmanager.register(ThroughVenv(venv, where), "pgdr-scenarios-in-venv")
    if not any(_under(where, arg) for arg in config.args):  # else found by recursing into it
        config.args.append(str(where))


def _under(path: Path, arg: str) -> bool:
    given = Path(arg)
    return given.is_dir() and path.resolve().is_relative_to(given.resolve())


def venv_holding(path: Path) -> Path | None:
    """The virtualenv (or conda env) ``path`` is installed in, if any."""
    path = Path(os.path.abspath(path))
    for parent in path.parents:
        if any((parent / marker).exists() for marker in VENV_MARKERS):
            return parent
    return None


class ThroughVenv:
    """Collect the drills inside a virtualenv: the directories leading to them, nothing else."""

    # paths compared as given, not resolved: a virtualenv's lib64 is a link to its lib, and
    # going down both would collect every drill twice
    def __init__(self, venv: Path, scenarios: Path) -> None:
        self.venv = Path(os.path.abspath(venv))
        self.scenarios = Path(os.path.abspath(scenarios))

    @pytest.hookimpl(tryfirst=True)
    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        path = Path(os.path.abspath(collection_path))
        if path == self.scenarios or path in self.scenarios.parents:
            return False if path.is_relative_to(self.venv) else None
        if path.is_relative_to(self.scenarios):
            return None
        return True if path.is_relative_to(self.venv) else None
