"""The architecture, checked from the source: the pure core reads and changes nothing, and no
two tffix modules import each other in a circle.

Imports are read from each module's syntax tree (every ``import`` statement, including the
ones inside functions), so a late import cannot slip past, and nothing is executed.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tffix"

PURE_CORE = (
    "tffix.facts",
    "tffix.causes",
    "tffix.graph",
    "tffix.planner",
    "tffix.report",
    "tffix.ruleset",
    "tffix.model",
    "tffix.diagnosis",
)
"""The modules that diagnose and plan (and everything they import): pure functions over frozen
data, as README's architecture section says."""
FORBIDDEN = ("tffix.probes", "tffix.effects", "tffix.prompt", "tffix._subprocess", "subprocess")
"""What reads or changes the system (probes, effects, the prompt, processes)."""


def _module_path(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for candidate in (PACKAGE.parent / rel / "__init__.py", PACKAGE.parent / f"{rel}.py"):
        if candidate.is_file():
            return candidate
    return None


def _all_modules() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


@cache
def imports_of(name: str) -> frozenset[str]:
    """Every module *name* imports (absolute names; ``from tffix import x`` gives
    ``tffix.x`` when that is a module)."""
    path = _module_path(name)
    if path is None:
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.add(module)
            for alias in node.names:
                child = f"{module}.{alias.name}"
                if _module_path(child) is not None:
                    out.add(child)
    return frozenset(out)


def _parents(name: str) -> list[str]:
    """``tffix.causes.base`` -> ``tffix.causes`` (importing a submodule runs its package)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def _edges(name: str) -> set[str]:
    """The tffix modules *name* imports, without its own packages: a package's
    ``__init__`` listing its submodules is not a cycle with them."""
    own = set(_parents(name))
    return {
        m
        for imported in imports_of(name)
        for m in (imported, *_parents(imported))
        if m.startswith("tffix") and m != name and m not in own and _module_path(m) is not None
    }


def reach(start: str) -> dict[str, str]:
    """Every module *start* imports, directly or not -> the module that imports it."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        name = todo.pop()
        for imported in imports_of(name):
            for m in (imported, *_parents(imported)):
                if m not in seen and m != start:
                    seen[m] = name
                    if m.startswith("tffix"):
                        todo.append(m)
    return seen


def _chain(seen: dict[str, str], start: str, end: str) -> str:
    path = [end]
    while path[-1] != start:
        path.append(seen[path[-1]])
    return " -> ".join(reversed(path))


@pytest.mark.parametrize("module", PURE_CORE)
def test_the_pure_core_imports_no_probe_effect_prompt_or_subprocess(module: str) -> None:
    modules = [module] + [m for m in _all_modules() if m.startswith(f"{module}.")]
    assert _module_path(module) is not None, module
    for start in modules:
        seen = reach(start)
        bad = sorted(m for m in seen if any(m == f or m.startswith(f"{f}.") for f in FORBIDDEN))
        assert bad == [], _chain(seen, start, bad[0]) if bad else ""


KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles being taken apart with the rewrite of those modules (remove when gone)."""


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components over tffix's own import graph."""
    graph = {m: _edges(m) for m in _all_modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(frozenset(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert [sorted(c) for c in cycles if c not in KNOWN_CYCLES] == []


def test_the_checker_sees_a_forbidden_import() -> None:
    """The walk itself works: the live collector does reach the probes and subprocess."""
    seen = reach("tffix.collect")
    assert "tffix.probes.target" in seen
    assert "tffix._subprocess" in seen or "subprocess" in seen
