"""The house rules of the package (issue 8): rooms import only downward, no import cycles, no
module over 400 lines, and the plugin costs nothing in runs that do not use it.

Rooms, bottom to top: basics, hosts, cluster, drill, report, session, plugin. The top-level
``pytest_pgdr/__init__.py`` (lazy exports) and the public shims ``faults.py`` and ``images.py``
are exempt as importers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pytest_pgdr

PACKAGE = Path(pytest_pgdr.__file__).resolve().parent
# backup: the backup-tool family sits on the cluster (it restores into nodes), below the drills;
# ha: the cluster managers (Patroni + etcd) and the poolers in front of them, on the cluster;
# sources: the team's real backups, restored through the backup family into sandboxes
ROOMS = {
    "basics": 0,
    "hosts": 1,
    "cluster": 2,
    "backup": 2.5,
    "ha": 2.6,
    "sources": 2.7,
    "drill": 3,
    "report": 4,
    "session": 5,
    "plugin": 6,
}
EXEMPT = {"pytest_pgdr", "pytest_pgdr.faults", "pytest_pgdr.images"}
# imports inside a function are allowed to go up here only (the plugin loads the core lazily)
LAZY_ROOMS = {"plugin"}
MAX_LINES = 400
HEAVY = ("psycopg", "pytest_pgdr.cluster", "pytest_pgdr.drill", "pytest_pgdr.hosts")
HEAVY += ("pytest_pgdr.session", "pytest_pgdr.report")


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    path: Path
    line: int
    target: str  # imported module (or the package whose attribute is imported)
    in_function: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def room(module: str) -> int | None:
    """The rank of ``module``'s room; None for the exempt top level."""
    parts = module.split(".")
    if module in EXEMPT or len(parts) < 2:
        return None
    return ROOMS.get(parts[1])


def _resolve(node: ast.ImportFrom, source: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(source: str, path: Path, known: set[str]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"

    def walk(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(source, path, child.lineno, alias.name, in_function)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(child, source, is_package)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    target = sub if sub in known else base
                    yield Import(source, path, child.lineno, target, in_function)
            yield from walk(child, inner)

    yield from walk(tree, False)


def all_imports() -> list[Import]:
    found = modules()
    known = set(found)
    out = []
    for name, path in found.items():
        out += [i for i in imports_of(name, path, known) if i.target.startswith("pytest_pgdr")]
    return out


def where(imp: Import) -> str:
    path = imp.path.relative_to(PACKAGE.parent) if imp.path.is_relative_to(PACKAGE) else imp.path
    return f"{path}:{imp.line}"


def upward(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        low = room(imp.source)
        if low is None:
            continue
        if imp.in_function and imp.source.split(".")[1] in LAZY_ROOMS:
            continue
        high = room(imp.target) if imp.target != "pytest_pgdr" else max(ROOMS.values()) + 1
        if high is not None and high > low:
            problems.append(
                f"{where(imp)}: {imp.source} ({imp.source.split('.')[1]}) imports"
                f" {imp.target}, a room above it"
            )
    return problems


def cycles(imports: list[Import]) -> list[str]:
    """Every strongly connected group of two or more modules, with one edge of each member."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if imp.target != imp.source:
            graph.setdefault(imp.source, {}).setdefault(imp.target, imp)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    out = []
    for group in groups:
        edges = [
            f"{where(imp)} imports {target}"
            for source in group
            for target, imp in graph.get(source, {}).items()
            if target in group
        ]
        out.append(f"cycle {' <-> '.join(group)}: " + "; ".join(edges))
    return out


def test_rooms_import_only_downward() -> None:
    problems = upward(all_imports())
    assert not problems, "imports that go up a room:\n" + "\n".join(problems)


def test_every_module_is_in_a_room() -> None:
    strays = sorted(m for m in modules() if m not in EXEMPT and room(m) is None)
    assert not strays, f"modules outside the rooms {list(ROOMS)}: {strays}"


def test_no_import_cycles() -> None:
    problems = cycles(all_imports())
    assert not problems, "import cycles:\n" + "\n".join(problems)


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): count
        for path in modules().values()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_rules_see_what_they_should(tmp_path: Path) -> None:
    """The checker itself: an upward import, one inside TYPE_CHECKING, one inside a function,
    relative imports and a cycle are all found."""
    assert room("pytest_pgdr.basics.units") == 0 and room("pytest_pgdr.session") == 5
    assert room("pytest_pgdr.faults") is None
    fake = tmp_path / "mod.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "from .errors import PgdrError\n"
        "if TYPE_CHECKING:\n"
        "    from pytest_pgdr.cluster.node import Node\n"
        "def f():\n"
        "    from ..drill import budget\n"
    )
    known = {"pytest_pgdr.basics.errors", "pytest_pgdr.drill.budget"}
    found = list(imports_of("pytest_pgdr.basics.mod", fake, known))
    assert [(i.line, i.target, i.in_function) for i in found] == [
        (1, "typing", False),
        (2, "pytest_pgdr.basics.errors", False),
        (4, "pytest_pgdr.cluster.node", False),
        (6, "pytest_pgdr.drill.budget", True),
    ]
    problems = upward(found[1:])
    assert len(problems) == 2 and "mod.py:4" in problems[0] and "mod.py:6" in problems[1]
    a = Import("pytest_pgdr.report.a", fake, 1, "pytest_pgdr.report.b", False)
    b = Import("pytest_pgdr.report.b", fake, 2, "pytest_pgdr.report.a", True)
    assert cycles([a, b]) == [
        "cycle pytest_pgdr.report.a <-> pytest_pgdr.report.b: "
        f"{where(a)} imports pytest_pgdr.report.b; {where(b)} imports pytest_pgdr.report.a"
    ]


def test_importing_the_plugin_loads_no_drill_core() -> None:
    code = (
        "import pytest_pgdr.plugin, sys;"
        f"heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r}));"
        "print(heavy); raise SystemExit(1 if heavy else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"import pytest_pgdr.plugin loaded: {done.stdout}{done.stderr}"


@pytest.mark.usefixtures("clean_env")
def test_a_run_without_pgdr_loads_no_drill_core(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_light=f"""
import sys
import pytest

@pytest.mark.pgdr
def test_marked_drill():
    pass

def test_uses_primary(pgdr_primary):
    pass

def test_nothing_heavy_loaded():
    heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))
    assert heavy == []
"""
    )
    result = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*opt in with 'pytest --pgdr'*"])
