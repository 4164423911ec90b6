"""apt configuration: which Debian mirror this machine uses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pytest_pgdr.hosts.images.specs import (
    _URI_SCHEMES,
    COMPONENT,
    PG15_IMAGE,
    SUITE,
    ImageBuildError,
)


def _deb822_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """Split deb822 text into paragraphs of {lower-case field: value}."""
    fields: dict[str, str] = {}
    key: str | None = None
    for raw in text.splitlines() + [""]:
        if raw.lstrip().startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, None
            continue
        if raw[0] in " \t" and key is not None:
            fields[key] += " " + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if sep:
            key = name.strip().lower()
            fields[key] = value.strip()


def _usable_uri(uri: str) -> bool:
    return uri.startswith(_URI_SCHEMES)


def parse_deb822_sources(text: str, suite: str = SUITE, component: str = COMPONENT) -> list[str]:
    """URIs of enabled ``Types: deb`` entries whose Suites/Components match."""
    uris: list[str] = []
    for par in _deb822_paragraphs(text):
        if par.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        if "deb" not in par.get("types", "").split():
            continue
        if suite not in par.get("suites", "").split():
            continue
        if component not in par.get("components", "").split():
            continue
        uris.extend(u for u in par.get("uris", "").split() if _usable_uri(u))
    return uris


_CLASSIC_RE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$")


def parse_classic_sources(text: str, suite: str = SUITE, component: str = COMPONENT) -> list[str]:
    """URIs of one-line ``deb URI suite components...`` entries that match."""
    uris: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        match = _CLASSIC_RE.match(line)
        if not match:
            continue
        uri, line_suite, components = match.groups()
        if line_suite == suite and component in components.split() and _usable_uri(uri):
            uris.append(uri)
    return uris


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _mirror_candidates(etc_apt: Path, suite: str) -> Iterator[str]:
    parts = etc_apt / "sources.list.d"
    for path in sorted(parts.glob("*.sources")):
        yield from parse_deb822_sources(_read(path), suite)
    yield from parse_classic_sources(_read(etc_apt / "sources.list"), suite)
    for path in sorted(parts.glob("*.list")):
        yield from parse_classic_sources(_read(path), suite)


def apt_mirror(suite: str = SUITE, etc_apt: Path | str = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for ``<suite> main``."""
    etc_apt = Path(etc_apt)
    for uri in _mirror_candidates(etc_apt, suite):
        return uri.rstrip("/")
    raise ImageBuildError(
        f"no Debian mirror found for '{suite} {COMPONENT}' in the apt configuration "
        f"({etc_apt}/sources.list.d/*.sources, {etc_apt}/sources.list, "
        f"{etc_apt}/sources.list.d/*.list): debootstrap needs one to build {PG15_IMAGE}. "
        f"Add an apt source for '{suite}' with component '{COMPONENT}' (deb822 or one-line format)."
    )
