"""pytest-pgdr: PostgreSQL disaster-recovery runbooks as repeatable, measured drills.

The drill API is plain Python and works without pytest::

    from pytest_pgdr import HarnessSession, Settings, RecoveryTarget

Names are loaded on first use, so that importing the package (which pytest does for the plugin
in every run of every repository that installed it) costs nothing until a drill needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module (under pytest_pgdr) that defines it
_EXPORTS = {
    "Archive": "cluster.archive",
    "Backup": "cluster.archive",
    "ConfigError": "basics.errors",
    "Dataset": "drill.dataset",
    "Fingerprint": "drill.verify",
    "HarnessSession": "session",
    "Installation": "hosts.install",
    "Lsn": "cluster.lsn",
    "Measurement": "drill.measure",
    "MissingBinaryError": "basics.errors",
    "Node": "cluster.node",
    "PgdrError": "basics.errors",
    "RecoveryError": "basics.errors",
    "RecoveryTarget": "cluster.recovery",
    "ServerStartError": "basics.errors",
    "Settings": "basics.settings",
    "Stopwatch": "basics.clock",
    "ToolError": "basics.errors",
    "Topology": "cluster.topology",
    "Unavailable": "basics.errors",
    "VersionSkip": "basics.errors",
    "WaitTimeout": "basics.errors",
    "Writer": "drill.writer",
    "assert_same": "drill.verify",
    "differences": "drill.verify",
    "find_installation": "hosts.install",
    "fingerprint": "drill.verify",
}

__all__ = [
    "Archive",
    "Backup",
    "ConfigError",
    "Dataset",
    "Fingerprint",
    "HarnessSession",
    "Installation",
    "Lsn",
    "Measurement",
    "MissingBinaryError",
    "Node",
    "PgdrError",
    "RecoveryError",
    "RecoveryTarget",
    "ServerStartError",
    "Settings",
    "Stopwatch",
    "ToolError",
    "Topology",
    "Unavailable",
    "VersionSkip",
    "WaitTimeout",
    "Writer",
    "assert_same",
    "differences",
    "find_installation",
    "fingerprint",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_pgdr' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pytest_pgdr.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from pytest_pgdr.basics.clock import Stopwatch
    from pytest_pgdr.basics.errors import (
        ConfigError,
        MissingBinaryError,
        PgdrError,
        RecoveryError,
        ServerStartError,
        ToolError,
        Unavailable,
        VersionSkip,
        WaitTimeout,
    )
    from pytest_pgdr.basics.settings import Settings
    from pytest_pgdr.cluster.archive import Archive, Backup
    from pytest_pgdr.cluster.lsn import Lsn
    from pytest_pgdr.cluster.node import Node
    from pytest_pgdr.cluster.recovery import RecoveryTarget
    from pytest_pgdr.cluster.topology import Topology
    from pytest_pgdr.drill.dataset import Dataset
    from pytest_pgdr.drill.measure import Measurement
    from pytest_pgdr.drill.verify import Fingerprint, assert_same, differences, fingerprint
    from pytest_pgdr.drill.writer import Writer
    from pytest_pgdr.hosts.install import Installation, find_installation
    from pytest_pgdr.session import HarnessSession
