"""The package list, found rather than written by hand (everything else is in pyproject.toml).

Every ``pytest_pgdr`` subpackage is discovered, so a new room can never be left out of the
wheel; the built-in drills live in the top-level ``scenarios/`` and are installed as
``pytest_pgdr.scenarios`` (``[tool.setuptools.package-dir]`` in pyproject.toml maps it).
"""

from setuptools import find_packages, setup

PACKAGES = [*find_packages(include=["pytest_pgdr", "pytest_pgdr.*"]), "pytest_pgdr.scenarios"]

setup(packages=PACKAGES)
