"""The package's import structure, read from its source with ``ast`` (the package is not imported,
except in the last test).

(a) no module uses another module's private (underscore) name, by ``from .x import _y`` or by attribute
    access ``x._y`` on an imported module; (b) the layers core -> geometry -> landscape -> dynamics ->
    outputs: no module imports from a higher layer, and the import graph has no cycle; (c) imports inside
    functions only of heavy optional packages, or in the command-line modules; (d) every name in
    ``quotient.__all__`` is importable from ``quotient``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "quotient"

LAYERS = ("core", "geometry", "landscape", "dynamics", "outputs")
"""From lowest to highest: a module may import from its own layer or a lower one."""

LAYER_OF = {
    # core: points, problems, losses, groups and their actions, data, file formats
    "_numerics": "core",
    "network": "core",
    "problem": "core",
    "losses": "core",
    "init": "core",
    "groups": "core",
    "symmetry": "core",
    "datasets": "core",
    "interop": "core",
    "_io": "core",
    # the groups' canonical representatives (Kempf-Ness balancing, DESIGN.md's symmetry row) are
    # orbit's algorithms: groups.HiddenGroup.representative calls them, so orbit sits with groups
    "orbit": "core",
    # geometry: conserved quantities, the rank manifold, the fiber bundle, the quotient map
    "conservation": "geometry",
    "rank_manifold": "geometry",
    "bundle": "geometry",
    "projection": "geometry",
    # landscape: critical values and points, their classification, the Hessian, fibers, saddles, minima
    "critical": "landscape",
    "classification": "landscape",
    "hessian": "landscape",
    "fiber": "landscape",
    "saddle": "landscape",
    "minimum": "landscape",
    "graph": "landscape",
    # dynamics: flows, their integration and their reductions
    "_ode": "dynamics",
    "_compiled": "dynamics",
    "flow": "dynamics",
    "quotient_flow": "dynamics",
    "ensemble": "dynamics",
    "discretisation": "dynamics",
    "riccati": "dynamics",
    "modes": "dynamics",
    "teleport": "dynamics",
    # outputs: pictures, the command line, sweeps
    "plot": "outputs",
    "figures": "outputs",
    "cli": "outputs",
    "sweep": "outputs",
    "__main__": "outputs",
}

HEAVY_OPTIONAL = ("matplotlib", "geomstats", "pymanopt", "torch", "sklearn", "dask", "pandas", "jax", "numba")
"""Packages that may be imported inside a function, to defer their import cost until used."""

LATE_IMPORTS_ALLOWED = ("cli", "__main__")
"""Modules whose imports may all sit inside functions (start-up time of the command line)."""


def _modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


@functools.cache
def _tree(module: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{module}.py").read_text(), filename=f"quotient/{module}.py")


def _resolve(node: ast.ImportFrom) -> list[tuple[str, str | None]]:
    """The package modules an import names, each with the imported name (None for a module import).

    ``from .x import y`` -> [("x", "y")]; ``from . import x`` -> [("x", None)]. Absolute imports of
    ``quotient.x`` count as well; imports of other packages give [].
    """
    if node.level == 0:
        if not (node.module or "").startswith("quotient"):
            return []
        parts = node.module.split(".")[1:]
    elif node.level == 1:
        parts = node.module.split(".") if node.module else []
    else:  # pragma: no cover - the package is flat
        raise AssertionError(f"relative import of level {node.level}")
    if not parts:
        return [(alias.name, None) for alias in node.names]
    return [(parts[0], alias.name) for alias in node.names]


def _imports(tree: ast.Module):
    """Every import of a package module: (node, module, name, inside_function)."""
    found = []

    def visit(node, inside):
        for child in ast.iter_child_nodes(node):
            deeper = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                for module, name in _resolve(child):
                    found.append((child, module, name, deeper))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("quotient."):
                        found.append((child, alias.name.split(".")[1], None, deeper))
            visit(child, deeper)

    visit(tree, False)
    return found


def _private_uses(module: str, tree: ast.Module | None = None) -> list[str]:
    """Another module's private names used by ``module`` (its source, or ``tree``), as readable lines."""
    tree = _tree(module) if tree is None else tree
    found = []
    module_aliases = {}  # local name -> package module, for attribute access
    for node, target, name, _ in _imports(tree):
        if target == module:
            continue
        if name is None:
            alias = next(a for a in node.names if a.name.split(".")[-1] == target or a.name == f"quotient.{target}")
            module_aliases[alias.asname or target] = target
        elif name.startswith("_") and not name.startswith("__"):
            found.append(f"line {node.lineno}: from .{target} import {name}")
        elif name in LAYER_OF or (PACKAGE / f"{name}.py").exists():
            module_aliases[name] = name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr} (module {module_aliases[node.value.id]})")
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module in _modules():
        graph[module] = {target for _, target, _, _ in _imports(_tree(module)) if target != module}
    return graph


def test_every_module_has_a_layer():
    missing = [m for m in _modules() if m not in LAYER_OF]
    assert not missing, f"modules with no layer in tests/test_architecture.py LAYER_OF: {missing}"


@pytest.mark.parametrize("module", _modules())
def test_no_private_names_of_other_modules(module):
    uses = _private_uses(module)
    assert not uses, f"quotient/{module}.py uses other modules' private names:\n" + "\n".join(uses)


@pytest.mark.parametrize("module", _modules())
def test_no_upward_imports(module):
    if module not in LAYER_OF:
        pytest.fail(f"quotient/{module}.py has no layer in LAYER_OF")
    level = LAYERS.index(LAYER_OF[module])
    upward = []
    for node, target, name, _ in _imports(_tree(module)):
        if target in LAYER_OF and LAYERS.index(LAYER_OF[target]) > level:
            upward.append(
                f"line {node.lineno}: {module} ({LAYER_OF[module]}) imports {target} ({LAYER_OF[target]})"
                + (f" for {name}" if name else "")
            )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _loads_heavy_package(module: str) -> bool:
    """Whether importing ``quotient.<module>`` imports a heavy optional package: an import of one at
    module level, or inside a function that module-level code calls."""
    tree = _tree(module)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    called = {
        node.func.id
        for statement in tree.body
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for node in ast.walk(statement)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    scopes = [s for s in tree.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    scopes += [functions[name] for name in called if name in functions]
    for scope in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] in HEAVY_OPTIONAL for a in node.names):
                return True
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in HEAVY_OPTIONAL:
                return True
    return False


def test_heavy_loader_detection():
    assert _loads_heavy_package("bundle")  # geomstats, through a function called at import
    assert not _loads_heavy_package("network")


@pytest.mark.parametrize("module", _modules())
def test_imports_inside_functions_only_for_heavy_packages(module):
    if module in LATE_IMPORTS_ALLOWED:
        return
    late = []
    for node in ast.walk(_tree(module)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            elif isinstance(inner, ast.ImportFrom):
                if inner.level == 1 and inner.module and _loads_heavy_package(inner.module.split(".")[0]):
                    continue  # a package module that loads a heavy optional package (plot -> bundle)
                names = [("." * inner.level) + (inner.module or "")]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in HEAVY_OPTIONAL:
                    late.append(f"line {inner.lineno}: import {name} inside {node.name}")
    assert not late, f"quotient/{module}.py imports inside functions:\n" + "\n".join(sorted(set(late)))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first == last), or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_private_name_finder_sees_both_forms():
    source = "from .network import _hidden, public\nfrom . import problem\nx = problem._gradient\n"
    uses = _private_uses("probe", ast.parse(source))
    assert uses == ["line 1: from .network import _hidden", "line 3: problem._gradient (module problem)"]


def test_every_exported_name_is_importable():
    quotient = importlib.import_module("quotient")
    missing = [name for name in quotient.__all__ if not hasattr(quotient, name)]
    assert not missing, f"names in quotient.__all__ that quotient does not provide: {missing}"
    assert len(set(quotient.__all__)) == len(quotient.__all__), "quotient.__all__ lists a name twice"
