"""The team's real backups as sources of nightly restores, behind one small interface
(:class:`BackupSource`), chosen by kind in :func:`open_source`: ``dump`` (pg_dump, any
format), ``dumpall`` (a pg_dumpall script), ``basebackup`` (pg_basebackup plus a WAL
archive), ``pgbackrest`` (repository + stanza), ``barman`` (a server of a Barman
configuration) and ``walg`` (a file store, with a user-supplied wal-g binary).

Every source is read only: nothing is written, locked or expired in it; locks, logs and
configuration copies go to the sandbox. Nothing outside this package asks which member it has.
"""

from pytest_pgdr.sources.base import (
    BackupIdentity,
    BackupSource,
    Restored,
    SourceError,
    SourceSpec,
    SourceUnavailable,
)
from pytest_pgdr.sources.checks import CheckResult, Checks, backup_age, load_checks, run_checks
from pytest_pgdr.sources.nightly import NightlySource, record_restore, restore_nightly
from pytest_pgdr.sources.registry import open_source, parse_spec, sources_from, target_of

__all__ = [
    "BackupIdentity",
    "BackupSource",
    "CheckResult",
    "Checks",
    "NightlySource",
    "Restored",
    "SourceError",
    "SourceSpec",
    "SourceUnavailable",
    "backup_age",
    "load_checks",
    "open_source",
    "parse_spec",
    "record_restore",
    "restore_nightly",
    "run_checks",
    "sources_from",
    "target_of",
]
