"""The import graph of dask_cli, read with ``ast``: function-local imports included.

No cycle anywhere (a cycle hidden in a function body is still a cycle for the
reader), and the shell service's core imports none of its features: features
register with the core (``debug/service/features.py``), never the reverse.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dask_cli

PACKAGE = Path(dask_cli.__file__).parent

SERVICE = "dask_cli.debug.service"
CORE = {
    f"{SERVICE}.{name}"
    for name in ("server", "session", "plugin", "features", "helpers", "completion", "streams")
} | {"dask_cli.debug.protocol", "dask_cli.debug.names"}
FEATURES = {f"{SERVICE}.{name}" for name in ("keepalive", "postmortem", "nanny", "install")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The dask_cli modules ``name`` imports, anywhere in the file, function bodies
    included (``TYPE_CHECKING`` blocks excepted: they never run)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from package import module`` imports the module; ``from module
            # import name`` the module.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # The longest known module the target names (``a.b.func`` -> ``a.b``).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported(name, path, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_function_local_imports() -> None:
    edges = graph()
    # debug/__init__.py imports install only inside dask_setup().
    assert f"{SERVICE}.install" in edges["dask_cli.debug"]
    assert f"{SERVICE}.keepalive" in edges[f"{SERVICE}.install"]


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_the_service_core_imports_no_feature() -> None:
    edges = graph()
    assert CORE <= set(edges), CORE - set(edges)
    assert FEATURES <= set(edges), FEATURES - set(edges)
    wrong = {core: sorted(edges[core] & FEATURES) for core in CORE if edges[core] & FEATURES}
    assert wrong == {}
