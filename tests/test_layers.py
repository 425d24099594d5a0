"""Layers point down: no module of ``transport/`` imports in a cycle.

Every import counts, the ones at the top of a module and the ones inside functions,
methods and ``try`` blocks alike: a function-level import runs when the function is
called, so it closes a loop as surely as a top-level one and only hides it from a
reader. Imports under ``if TYPE_CHECKING:`` are left out, since they never run; they
exist for annotations only.

``from .x import y`` counts as importing ``x.y`` when ``y`` is a submodule, and as
importing ``x`` (its ``__init__.py``) otherwise: a package's re-exports are edges too.
Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so it counts
as importing those packages too, except the ones the importer sits in (Python is
already running them): ``transport/__init__.py`` re-exports the core, yet a module of
``transport`` importing a sibling does not loop through it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import transport

ROOT = Path(transport.__file__).parent

# Imports that close a cycle for now; each says what removes it. The list only
# shrinks (test_known_cycles_still_exist).
KNOWN: dict[tuple[str, str], str] = {
    ("transport.encoding.protobuf", "transport.proto"): (
        "the deprecated alias of proto_file at its old path (encoding/protobuf/__init__.py's "
        "__getattr__, which warns): removed next release, with this entry"
    ),
}


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``line``."""

    source: str
    target: str
    line: int
    in_function: bool


def _module_names(root: Path, package: str) -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join([package, *parts])] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Each import statement that can run, and whether it sits inside a function."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for orelse in child.orelse:
                    walk_one(orelse, in_function)
                continue
            walk_one(child, in_function)

    def walk_one(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, in_function))
            return
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        walk(node, inner)

    walk(tree, False)
    return found


def _initialised(source: str, is_package: bool, targets: list[str]) -> list[str]:
    """The modules that importing ``targets`` from ``source`` runs: each target and the
    packages above it, less those ``source`` sits in (they are already running)."""
    parts = source.split(".")
    ancestors = {".".join(parts[:i]) for i in range(1, len(parts) + is_package)}
    ran: list[str] = []
    for target in targets:
        parts = target.split(".")
        packages = [".".join(parts[:i]) for i in range(1, len(parts))]
        ran += [package for package in packages if package not in ancestors]
        ran.append(target)  # named in the import: an edge even to a package it sits in
    return ran


def import_graph(root: Path, package: str) -> list[Edge]:
    """Every import from a module of ``package`` (at ``root``) to another of its modules."""
    modules = _module_names(root, package)
    edges: list[Edge] = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, in_function in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    base_parts = here[: len(here) - (node.level - 1)]
                    if node.module:
                        base_parts = [*base_parts, *node.module.split(".")]
                    base = ".".join(base_parts)
                else:
                    base = node.module or ""
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules else base)
            for target in dict.fromkeys(_initialised(name, is_package, targets)):
                if target in modules:
                    edges.append(Edge(name, target, node.lineno, in_function))
    return edges


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    # Tarjan's algorithm, iterative so a deep package cannot hit the recursion limit.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def find_cycles(
    root: Path, package: str, allowed: dict[tuple[str, str], str] | None = None
) -> list[str]:
    """Each import cycle among the modules of ``package``, described with its imports.

    A cycle is a self-import or a set of modules that reach one another (a strongly
    connected component of more than one module). Edges in ``allowed`` are left out.
    """
    edges = [
        edge
        for edge in import_graph(root, package)
        if (edge.source, edge.target) not in (allowed or {})
    ]
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    reports: list[str] = []
    for component in _strongly_connected(graph):
        members = set(component)
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        lines = [f"cycle among {', '.join(component)}:"]
        for edge in sorted(edges, key=lambda e: (e.source, e.line)):
            if edge.source in members and edge.target in members:
                where = " (inside a function)" if edge.in_function else ""
                lines.append(f"  {edge.source}:{edge.line} -> {edge.target}{where}")
        reports.append("\n".join(lines))
    return reports


def test_no_import_cycle_in_transport() -> None:
    cycles = find_cycles(ROOT, "transport", KNOWN)
    assert not cycles, "import cycles in transport/:\n" + "\n".join(cycles)


def test_known_cycles_still_exist() -> None:
    # An allowed edge that is gone must leave the list, so the list only shrinks.
    present = {(edge.source, edge.target) for edge in import_graph(ROOT, "transport")}
    stale = sorted(set(KNOWN) - present)
    assert not stale, f"remove from KNOWN, these imports are gone: {stale}"


def test_the_checker_finds_a_planted_cycle(tmp_path: Path) -> None:
    package = tmp_path / "planted"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .c import Thing\n"
        "def use() -> None:\n"
        "    from .sub import b\n"
    )
    (package / "sub" / "b.py").write_text(
        "class K:\n    def helper(self) -> None:\n        from .. import a\n"
    )
    # a imports c only for annotations, so c importing a is no cycle.
    (package / "c.py").write_text("from . import a\nclass Thing: ...\n")
    (package / "d.py").write_text("import planted.d\n")

    cycles = find_cycles(package, "planted")

    assert len(cycles) == 2, cycles
    pair, self_import = sorted(cycles)
    assert pair.splitlines() == [
        "cycle among planted.a, planted.sub.b:",
        "  planted.a:5 -> planted.sub.b (inside a function)",
        "  planted.sub.b:3 -> planted.a (inside a function)",
    ]
    assert self_import.splitlines() == ["cycle among planted.d:", "  planted.d:1 -> planted.d"]
    # A re-export in a package's __init__.py is an edge too.
    (package / "d.py").unlink()
    (package / "sub" / "__init__.py").write_text("from .b import helper as helper\n")
    (package / "sub" / "b.py").write_text("from . import K\nhelper = 1\n")
    assert find_cycles(package, "planted") == [
        "cycle among planted.sub, planted.sub.b:\n"
        "  planted.sub:1 -> planted.sub.b\n"
        "  planted.sub.b:1 -> planted.sub"
    ]
    # Importing planted.sub.b runs planted/sub/__init__.py first: an edge to it too.
    (package / "sub" / "__init__.py").write_text("from .. import a\n")
    (package / "sub" / "b.py").write_text("")
    (package / "a.py").write_text("import planted.sub.b\n")
    assert find_cycles(package, "planted") == [
        "cycle among planted.a, planted.sub:\n"
        "  planted.a:1 -> planted.sub\n"
        "  planted.sub:1 -> planted.a"
    ]


def test_proto_file_at_its_old_path_warns_and_is_the_same_function() -> None:
    import pytest

    import transport.encoding.protobuf as old
    from transport.proto import proto_file

    with pytest.warns(DeprecationWarning, match="import it from transport.proto"):
        assert old.proto_file is proto_file
