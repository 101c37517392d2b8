"""The import graph of the repository's own packages, read from source with ``ast`` (nothing is imported).

Every ``import`` statement counts wherever it sits (module level, inside a function, under a
condition): a function-level import still runs, and a cycle it closes breaks as soon as the two
modules are imported in the other order. Importing ``a.b.c`` also runs the ``__init__`` of every
package above it that the importer is not itself inside, so those packages are edges too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → source file, for every ``.py`` file under ``root / package``."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _resolve(name: str, known: Iterable[str]) -> str | None:
    """The longest known module that ``name`` is, or lies in (``pkg.mod.attr`` → ``pkg.mod``)."""
    known = set(known)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports (``from a import b`` gives ``a.b``), relative ones resolved."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def module_name_strings(path: Path, known: Iterable[str]) -> set[str]:
    """String constants in ``path`` that are exactly a known module's name.

    A lazy ``importlib.import_module("pkg.mod")`` table is an import the statements do not show.
    """
    known = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in known}


def import_graph(root: Path, *packages: str, string_references: bool = False) -> dict[str, set[str]]:
    """Module → the modules of ``packages`` that importing it runs (see the module docstring).

    ``string_references`` counts a string constant that names a known module as an import
    (see :func:`imported_names`); only exact module names count, so prose never does.
    """
    modules: dict[str, Path] = {}
    for package in packages:
        modules.update(module_files(root, package))
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        names = imported_names(module, path)
        if string_references:
            names |= module_name_strings(path, modules)
        for name in names:
            target = _resolve(name, modules)
            if target is None:
                continue
            edges.add(target)
            edges.update(a for a in _ancestors(target) if a not in _ancestors(module) and a != module)
        edges.discard(module)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph is small, recursion depth is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(min(c), graph, c) for c in components]


def _cycle_through(start: str, graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path start → ... → start inside ``component`` (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & component):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")
