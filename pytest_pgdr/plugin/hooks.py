"""Hooks a team implements in any conftest.py (or plugin) to shape the drills."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_pgdr_seed(node: Any, dbname: str) -> object:
    """Load the team's schema and data into ``dbname`` (already created) on ``node``, a
    running primary (:class:`pytest_pgdr.Node`: ``node.psql(sql, dbname)``,
    ``node.run_tool("pg_restore", ...)``, ``node.query(...)``). Every built-in drill then
    protects that database. Return anything but None to stop other implementations."""
