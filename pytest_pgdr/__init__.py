"""pytest-pgdr: PostgreSQL disaster-recovery runbooks as repeatable, measured drills.

The drill API is plain Python and works without pytest::

    from pytest_pgdr import HarnessSession, Settings, RecoveryTarget
"""

from .archive import Archive, Backup
from .dataset import Dataset
from .errors import (
    ConfigError,
    MissingBinaryError,
    PgdrError,
    RecoveryError,
    ServerStartError,
    ToolError,
    VersionSkip,
    WaitTimeout,
)
from .install import Installation, find_installation
from .measure import Measurement
from .node import Lsn, Node
from .recovery import RecoveryTarget
from .session import HarnessSession
from .settings import Settings
from .timing import Stopwatch
from .topology import Topology
from .verify import Fingerprint, assert_same, differences, fingerprint
from .writer import Writer

__version__ = "0.1.0"

__all__ = [
    "Archive",
    "Backup",
    "ConfigError",
    "Dataset",
    "Fingerprint",
    "HarnessSession",
    "Installation",
    "Lsn",
    "Writer",
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
    "VersionSkip",
    "WaitTimeout",
    "assert_same",
    "differences",
    "find_installation",
    "fingerprint",
]
