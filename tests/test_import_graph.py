"""The project's modules import each other without cycles, and the leaf packages stay leaves.

Every ``import`` statement is read with ``ast`` (module level, inside functions
and under ``TYPE_CHECKING`` alike: a cycle hidden in a function or a type hint
is still two modules that each need the other), resolved to a module of the
project, and the graph is checked for cycles. A package's ``__init__`` counts
as the module named after the package; a module is not taken to import its
own parent package (Python runs the parent's ``__init__`` first anyway).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("losses", "models", "baselines", "evaluation", "xmtc")
LEAVES = ("losses", "models", "evaluation")  # DESIGN.md §4: they never import xmtc


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that module ``name`` (file ``path``) imports."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, up level - 1 packages
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # ``from pkg import sub`` imports the submodule ``pkg.sub`` when there is one
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import a.b.c`` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_sees_relative_and_type_checking_imports():
    graph = import_graph()
    assert "xmtc.train.checkpoint" in graph["xmtc.train.engine"]  # ``from . import checkpoint``
    assert "losses.ipot" in graph["losses.set_loss"]  # ``from .ipot import ...``
    assert {"losses.ipot", "losses.set_loss"} <= graph["losses"]  # the package's __init__


def test_no_import_cycle_among_project_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_leaf_packages_do_not_import_xmtc():
    graph = import_graph()
    bad = sorted(f"{m} -> {t}" for m, targets in graph.items() if m.split(".")[0] in LEAVES
                 for t in targets if t.split(".")[0] == "xmtc")
    assert not bad, bad
