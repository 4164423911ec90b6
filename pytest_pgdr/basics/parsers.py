"""Parsers of option values: each takes (flag name, text) and returns the value or raises
ConfigError listing the valid values."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from pytest_pgdr.basics.errors import ConfigError, register_secret

BACKENDS = ("local", "docker")
ON_OFF = {
    "on": True,
    "off": False,
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
}


def parse_choice(valid: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        if text not in valid:
            raise ConfigError(f"Bad value {text!r} for {name}", f"valid values: {', '.join(valid)}")
        return text

    return parse


def parse_backends(name: str, text: str) -> str:
    chosen = [b.strip() for b in text.split(",") if b.strip()]
    bad = [b for b in chosen if b not in BACKENDS]
    if bad or not chosen:
        raise ConfigError(
            f"Bad value {text!r} for {name}",
            f"valid values: {', '.join(BACKENDS)} (comma-separate for several)",
        )
    return ",".join(dict.fromkeys(chosen))


def parse_bool(name: str, text: str) -> bool:
    try:
        return ON_OFF[text.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"Bad value {text!r} for {name}", "valid values: on, off (or true/false, yes/no, 1/0)"
        ) from None


def parse_positive_float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(
            f"Bad value {text!r} for {name}",
            "it must be a finite number above 0, such as 1, 2.5 or 0.5",
        )
    return value


def parse_count(name: str, text: str) -> int:
    """A whole number of at least 1 (trials, repetitions)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(
            f"Bad value {text!r} for {name}", "it must be a whole number of at least 1, such as 3"
        )
    return int(text)


def parse_urls(name: str, text: str) -> tuple[str, ...]:
    """HTTP(S) URLs, comma- or line-separated ('none': no URL); a password in one is a secret."""
    if text.strip() in ("", "none"):
        return ()
    urls = tuple(u.strip() for u in text.replace("\n", ",").split(",") if u.strip())
    for url in urls:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(
                f"Bad URL {url!r} for {name}", "it must look like http://[user:password@]host:port"
            )
        login = re.match(r"^https?://[^:/@]*:([^@/]+)@", url)
        if login:
            register_secret(login.group(1))
    return urls


def parse_dsn(name: str, text: str) -> str | None:
    """A libpq connection string ('none': none); its password is registered as a secret."""
    if text.strip() in ("", "none"):
        return None
    found = re.search(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", text)
    if found:
        register_secret(found.group(1).strip("'"))
    return text.strip()


def parse_specs(name: str, text: str) -> tuple[str, ...]:
    specs = tuple(s.strip() for s in text.replace("\n", ",").split(",") if s.strip())
    if not specs:
        raise ConfigError(
            f"Empty value for {name}",
            "valid values: embedded, system, system:N, N, pg_config, a bin dir",
        )
    return specs


def parse_lines(name: str, text: str) -> tuple[str, ...]:
    """Several values, one a line (an ini list) or comma-separated on the command line."""
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(v.strip() for v in text.replace("\n", ",").split(",") if v.strip())


def parse_server_settings(name: str, text: str) -> tuple[tuple[str, str], ...]:
    """``name = value`` pairs, one a line or separated by ``;`` (values may hold commas)."""
    pairs: list[tuple[str, str]] = []
    for item in text.replace("\n", ";").split(";"):
        if not item.strip() or item.strip().lower() == "none":
            continue
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[a-z_][a-z0-9_.]*", key.strip()):
            raise ConfigError(
                f"Bad value {item.strip()!r} for {name}",
                "each server setting is name = value (one a line in the ini file, or"
                " separated by ';'), e.g. max_connections = 100; timezone = Asia/Kolkata",
            )
        pairs.append((key.strip(), value.strip().strip("'")))
    return tuple(pairs)


BACKUP_TOOLS = ("plain", "pgbackrest", "barman", "walg")


def parse_backup_tools(name: str, text: str) -> tuple[str, ...]:
    chosen = parse_lines(name, text) or ("installed",)
    bad = [t for t in chosen if t not in (*BACKUP_TOOLS, "installed", "all")]
    if bad:
        raise ConfigError(
            f"Bad value {', '.join(bad)!r} for {name}",
            f"valid values: {', '.join(BACKUP_TOOLS)}, installed (every one this machine has),"
            " all (comma-separate for several)",
        )
    return chosen


def parse_identifier(name: str, text: str) -> str:
    if not re.fullmatch(r"[^\x00-\x1f]{1,63}", text.strip()):
        raise ConfigError(
            f"Bad value {text!r} for {name}", "a PostgreSQL name: 1 to 63 printable characters"
        )
    return text.strip()


RESERVED_DATABASES = ("postgres", "template0", "template1")


def parse_database(name: str, text: str) -> str:
    """The team's database: a name, but not one the server or the drills keep for themselves
    (the drills' markers of the multi-target drills live in ``postgres``)."""
    dbname = parse_identifier(name, text)
    if dbname in RESERVED_DATABASES:
        raise ConfigError(
            f"Bad value {text!r} for {name}: the drills keep their own rows in {dbname!r}",
            "the database of your data must be apart from postgres, template0 and template1",
            "Name another database (the default is app); your files are loaded into it",
        )
    return dbname


def parse_path(name: str, text: str) -> str:
    return text if text == "auto" else str(Path(text).expanduser())


def parse_optional_path(name: str, text: str) -> str | None:
    return None if text.strip().lower() in ("", "none") else str(Path(text).expanduser())


SOURCE_KINDS = ("dump", "dumpall", "basebackup", "pgbackrest", "barman", "walg")
SOURCE_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.-]{0,40})\s*=\s*([a-z]+):(.+?)\s*$")


def parse_sources(name: str, text: str) -> tuple[tuple[str, str, str], ...]:
    """The team's backups: ``name = kind:path[?key=value&...]``, one a line (or the flag
    repeated); returns (name, kind, path with its options) triples, names unique."""
    out: dict[str, tuple[str, str, str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.strip().lower() == "none" or line.lstrip().startswith("#"):
            continue
        match = SOURCE_LINE.match(line)
        if match is None or match.group(2) not in SOURCE_KINDS:
            raise ConfigError(
                f"Bad value {line.strip()!r} for {name}",
                "each backup source is name = kind:path (one a line in the ini file, or the"
                f" flag repeated), kind one of {', '.join(SOURCE_KINDS)}; e.g."
                " nightly=dump:/backups/app.dump or main=basebackup:/backups/base?wal=/backups/wal",
            )
        if match.group(1) in out:
            raise ConfigError(f"Backup source {match.group(1)!r} is named twice in {name}")
        out[match.group(1)] = (match.group(1), match.group(2), match.group(3))
    return tuple(out.values())
