"""The tree is the architecture: imports go one way and never in a circle.

Read from the source (every ``import``, at any depth, including ``TYPE_CHECKING`` blocks), so a
lazy import inside a function cannot hide a wrong-way dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "connector", "jobs")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """The project modules that ``name`` imports, resolved to modules (not names inside them)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in MODULES else base for t in targets]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(source: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if _under(m, source)
        for t in targets
        if any(_under(t, f) for f in forbidden)
    )


def test_the_graph_is_read_from_the_real_tree():
    assert "jobs.service.pipeline" in MODULES and "connector.client" in GRAPH
    assert "jobs.service.mirror" in GRAPH["jobs.service.pipeline"]


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("core", ("connector", "jobs")),
        ("connector", ("jobs",)),
        ("jobs.leads", ("jobs.service", "jobs.cli", "jobs.console", "jobs.engines", "connector")),
        ("jobs.customers", ("jobs.service", "jobs.cli", "jobs.console", "jobs.engines", "connector")),
        ("jobs.engines", ("jobs.cli", "jobs.console", "connector")),
        ("jobs.errors", ("jobs.service", "jobs.cli", "jobs.leads", "jobs.customers", "connector")),
        ("jobs.moments", ("jobs.service", "jobs.cli", "jobs.leads", "jobs.customers", "connector")),
        ("jobs.service", ("jobs.cli", "jobs.console")),
        ("jobs.console", ("jobs.cli",)),
    ],
)
def test_imports_go_one_way(source, forbidden):
    assert _violations(source, forbidden) == []


def test_the_sandbox_imports_none_of_the_connectors_request_code():
    allowed = ("connector.sandbox", "connector.errors", "connector.query")
    wrong = [
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if _under(m, "connector.sandbox")
        for t in targets
        if _under(t, "connector") and not any(_under(t, a) for a in allowed)
    ]
    assert wrong == []


def test_no_import_cycles():
    """Tarjan's strongly connected components: any component of two or more modules is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert cycles == []


def test_a_cycle_would_be_found():
    """The checker itself: a made-up two-module loop is reported."""
    GRAPH["jobs.errors"].add("jobs.moments")
    GRAPH["jobs.moments"].add("jobs.errors")
    try:
        with pytest.raises(AssertionError):
            test_no_import_cycles()
    finally:
        GRAPH["jobs.errors"].discard("jobs.moments")
        GRAPH["jobs.moments"].discard("jobs.errors")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_long_modules_say_why(name):
    """No module over ~600 lines unless its docstring says why it is one module."""
    path = MODULES[name]
    lines = path.read_text().count("\n")
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert lines <= 650 or "one module" in doc.lower(), f"{path.relative_to(ROOT)}: {lines} lines"
