"""Unit test of the in-place standby rebuild's guard (no server needed); the rebuild itself runs
in the drills test_slot_wal_limit and test_data_directory_lost."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_pgdr import RecoveryError, Topology


def test_rebuild_refuses_a_running_server() -> None:
    node = SimpleNamespace(name="standby", is_running=lambda: True)
    with pytest.raises(RecoveryError, match="Rebuilding standby needs it stopped"):
        Topology.rebuild(SimpleNamespace(), node, SimpleNamespace())  # type: ignore[arg-type]
