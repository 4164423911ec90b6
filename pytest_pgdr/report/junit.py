"""A drill's figures and recorded values as JUnit XML properties of its test case (``pgdr_*``),
and the same values flattened for the HTML."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pytest_pgdr.basics.errors import redact


def junit_properties(data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A drill's figures as JUnit XML properties of its test case (``pgdr_*``)."""
    context = data.get("context", {})
    props: list[tuple[str, Any]] = [
        (f"pgdr_{k}", context[k])
        for k in ("backend", "postgres", "postgres_version")
        if k in context
    ]
    if data.get("rto"):
        props.append(("pgdr_rto_s", data["rto"]["total_s"]))
        props += [(f"pgdr_phase_{_slug(p['name'])}_s", p["seconds"]) for p in data["rto"]["phases"]]
    outage = data.get("outage") or {}
    props += [
        (f"pgdr_outage_{k}", outage[k])
        for k in ("seconds", "server_gap_s")
        if outage.get(k) is not None
    ]
    rpo = data.get("rpo") or {}
    props += [
        (f"pgdr_rpo_{k}", rpo[k])
        for k in ("lost_commits", "window_s", "wal_bytes")
        if rpo.get(k) is not None
    ]
    for name, fig in data.get("figures", {}).items():
        props.append((f"pgdr_{_figure_key(name, fig['unit'])}", fig["value"]))
    budget = data.get("budget") or {}
    props += [
        (f"pgdr_budget_{k}", budget[k]) for k in ("rto_s", "rpo_s") if budget.get(k) is not None
    ]
    if data.get("verdict"):
        props.append(("pgdr_verdict", data["verdict"]["status"]))
    props += [(f"pgdr_{_slug(k)}", v) for k, v in flat_values(data.get("values") or {})]
    return props


def flat_values(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A drill's recorded values (backup identity, check results...) as ``(name, text)``
    pairs, one level of nesting spelt ``outer inner``: what JUnit and the HTML show."""
    out: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, Mapping):
            out += [(f"{name} {k}", _text(v)) for k, v in value.items() if v not in (None, "")]
        else:
            out.append((name, _text(value)))
    return out


def _text(value: Any) -> str:
    """Free-form text, with every registered secret masked (a value may quote a conninfo)."""
    if isinstance(value, list | tuple):
        return redact(", ".join(map(str, value)))
    return redact(str(value))


def _slug(name: str) -> str:
    """``restore base backup`` -> ``restore_base_backup`` (no spaces in property names)."""
    return re.sub(r"_+", "_", "".join(c if c.isalnum() else "_" for c in name.lower())).strip("_")


UNIT_SUFFIX = {"B/s": "bytes_per_s", "B": "bytes", "s": "s"}


def _figure_key(name: str, unit: str) -> str:
    """``restore throughput`` in B/s -> ``restore_throughput_bytes_per_s``."""
    slug = _slug(name)
    suffix = UNIT_SUFFIX.get(unit, "".join(c if c.isalnum() else "_" for c in unit))
    return slug if not suffix or slug.endswith(suffix) else f"{slug}_{suffix}"
