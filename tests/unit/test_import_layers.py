"""Import layers of ``src/herald`` (issue 15): the backbone imports no capability, and cycles
between top-level packages only shrink.

Imports count wherever they are — module level or inside a function — except under
``if TYPE_CHECKING:`` (never executed). The graph is between top-level packages/modules of
``herald`` (``herald.registry.store`` counts as ``registry``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "herald"

# the backbone: messages, the event log, sensors, jobs, settings, policies and the port registry
BACKBONE = {
    "adapters",
    "auth",
    "bus",
    "cronexpr",
    "errors",
    "jobs",
    "messages",
    "metrics",
    "plugins",
    "raycluster",
    "security",
    "sensors",
    "settings",
    "store",
}

# Cycles still to break (issue 15, step 2). This set may only shrink: a package that joins a
# cycle fails the test. The capabilities <-> services: Services opens the capabilities' stores
# lazily while they ask Services for them.
KNOWN_CYCLES = {
    frozenset(
        {
            "datasets",
            "evaluation",
            "models",
            "monitoring",
            "rag",
            "registry",
            "services",
            "serving",
            "training",
        }
    ),
}


class _Imports(ast.NodeVisitor):
    def __init__(self) -> None:
        self.modules: list[str] = []

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.modules += [a.name for a in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        assert node.level == 0, f"line {node.lineno}: Herald uses absolute imports only"
        if node.module:
            self.modules.append(node.module)


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).parts
        src = parts[0].removesuffix(".py")
        if src == "__init__":
            continue
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(), str(path)))
        for module in visitor.modules:
            if module.startswith("herald."):
                dst = module.split(".")[1]
                if dst != src:
                    graph.setdefault(src, set()).add(dst)
        graph.setdefault(src, set())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_backbone_imports_no_capability() -> None:
    graph = package_graph()
    upward = {
        f"{src} -> {dst}" for src in BACKBONE for dst in graph.get(src, ()) if dst not in BACKBONE
    }
    assert not upward, f"backbone packages import capabilities: {sorted(upward)}"


def test_no_new_import_cycle() -> None:
    for comp in cycles(package_graph()):
        assert any(comp <= known for known in KNOWN_CYCLES), (
            f"a new import cycle between {sorted(comp)} (known, still to break: "
            f"{[sorted(k) for k in KNOWN_CYCLES]})"
        )


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [frozenset({"a", "b"})]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[frozenset[str]]
) -> None:
    assert cycles(graph) == expected
