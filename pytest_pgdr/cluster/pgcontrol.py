"""pg_control and WAL header surgery: a copied data directory gets its own system identifier.

The identifier is written into ``global/pg_control`` (with its CRC-32C recomputed) and into the
long page header of each WAL segment, so a replica can never attach to the wrong cluster.
"""

from __future__ import annotations

import secrets
import struct
import time
from pathlib import Path

from pytest_pgdr.hosts.files import Files

XLP_LONG_HEADER = 0x0002


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """CRC-32C (Castagnoli), as PostgreSQL computes it; returns the finalised value."""
    return _crc32c_update(crc, data) ^ 0xFFFFFFFF


def _crc32c_update(crc: int, data: bytes) -> int:
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def control_crc_offset(control: bytes) -> int:
    """Where pg_control keeps its CRC: the first 4-aligned offset where the CRC of all bytes
    before it matches. The layout changes across major versions, so it is found, not assumed."""
    crc = 0xFFFFFFFF
    for offset in range(0, 1024, 4):
        if offset >= 16 and struct.unpack_from("<I", control, offset)[0] == crc ^ 0xFFFFFFFF:
            return offset
        crc = _crc32c_update(crc, control[offset : offset + 4])
    raise ValueError("pg_control CRC not found: not a PostgreSQL control file?")


def new_system_identifier() -> int:
    """Like initdb's: seconds in the high half, then microseconds, then random bits."""
    now = time.time()
    seconds, micros = int(now), int((now % 1) * 1_000_000)
    return (seconds << 32) | (micros << 12) | secrets.randbits(12)


def set_system_identifier(files: Files, datadir: Path, sysid: int) -> None:
    control_path = datadir / "global" / "pg_control"
    control = bytearray(files.read_bytes(control_path))
    offset = control_crc_offset(bytes(control))
    struct.pack_into("<Q", control, 0, sysid)
    struct.pack_into("<I", control, offset, crc32c(bytes(control[:offset])))
    files.write_bytes(control_path, bytes(control), offset=0)
    for name in files.file_sizes(datadir / "pg_wal"):
        if len(name) == 24:
            _patch_segment_sysid(files, datadir / "pg_wal" / name, sysid)


def _patch_segment_sysid(files: Files, segment: Path, sysid: int) -> None:
    header = files.read_bytes(segment, 0, 32)
    if len(header) == 32 and struct.unpack_from("<H", header, 2)[0] & XLP_LONG_HEADER:
        files.write_bytes(segment, struct.pack("<Q", sysid), offset=24)


def system_identifier(files: Files, datadir: Path) -> int:
    control = files.read_bytes(datadir / "global" / "pg_control", 0, 8)
    return int(struct.unpack_from("<Q", control, 0)[0])
