"""The package's layering (docs/architecture.md): the import graph has no cycle, and no module imports a
module of a higher layer. Built from the source with ``ast``; imports under ``if TYPE_CHECKING:`` are
left out (they never run), imports inside functions are counted (they run when called)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "optiyield"

#: Lowest layer first. A module may import modules of its own layer or lower ones only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("optiyield", "optiyield.units", "optiyield.errors", "optiyield.registry", "optiyield.safety"),
    ("optiyield.stats", "optiyield.measure", "optiyield.netlist", "optiyield.yield_", "optiyield.parasitics",
     "optiyield.pdk", "optiyield.pyspice_netlist"),
    ("optiyield.sim", "optiyield.execute"),
    ("optiyield.testbench", "optiyield.region_specs"),
    ("optiyield.spec", "optiyield.corners"),
    ("optiyield.objective", "optiyield.montecarlo", "optiyield.store", "optiyield.sensitivity", "optiyield.dataset",
     "optiyield.outdir", "optiyield.touchstone"),
    ("optiyield.optim", "optiyield.reliability"),
    ("optiyield.propose",),
    ("optiyield.run",),
    ("optiyield.report",),
    ("optiyield.dashboard",),
    ("optiyield.api",),
    ("optiyield.cli", "optiyield.__main__"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> int:
    best, depth = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module.startswith(prefix + ".") and prefix != "optiyield"  # the bare package is itself only
            if (module == prefix or inside) and len(prefix) > depth:
                best, depth = index, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS here and to docs/architecture.md")
    return best


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules a file imports at run time."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: _imports(path, modules) for name, path in files.items()}


def test_every_module_has_a_layer(graph):
    for module in graph:
        _layer(module)


def test_no_module_imports_a_higher_layer(graph):
    upward = [f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
              for m, deps in sorted(graph.items()) for d in sorted(deps) if _layer(d) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle(graph):
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_check_sees_a_cycle_and_an_upward_import(tmp_path):
    """The checks above can fail: a planted upward import and a planted cycle are both found."""
    bad = {"optiyield.spec": {"optiyield.run"}, "optiyield.run": {"optiyield.spec"}}
    assert _layer("optiyield.spec") < _layer("optiyield.run")
    with pytest.raises(AssertionError, match="import cycle"):
        test_the_import_graph_has_no_cycle(bad)
    with pytest.raises(AssertionError, match="optiyield.spec .* imports optiyield.run"):
        test_no_module_imports_a_higher_layer(bad)
