"""The shape of the package: every module imports on its own, no import cycle, no private name shared.

* Each ``mrsdask`` module is imported alone (all ``mrsdask`` modules dropped from
  ``sys.modules`` before each one) in a fresh interpreter: a module that works only when
  something else happened to be imported first fails here.
* The import graph read from the source (every ``import`` statement, at module level and
  inside functions alike: an import deferred into a function is still a dependency, and the
  cycles this test was written against were hidden there) has no cycle. Imports under
  ``if TYPE_CHECKING:`` are left out: they never run.
* No module imports a private name (``_name``) from another ``mrsdask`` module, nor reads one
  as an attribute of an imported ``mrsdask`` module (``paths._strip``): what another module
  needs is public.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mrsdask

PACKAGE_DIR = Path(mrsdask.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = ("mrsdask",) + path.relative_to(PACKAGE_DIR).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom node, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _base(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join(package + ([node.module] if node.module else []))


@functools.lru_cache(maxsize=None)
def _imports(module: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The mrsdask modules ``module`` imports, and the private names it takes from them."""
    tree = ast.parse(MODULES[module].read_text())
    targets: set[str] = set()
    private: list[str] = []
    aliases: dict[str, str] = {}  # local name -> mrsdask module it is bound to
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mrsdask"):
                    targets.add(alias.name)
                    if alias.asname:
                        aliases[alias.asname] = alias.name
            continue
        base = _base(module, node)
        if not base.startswith("mrsdask"):
            continue
        for alias in node.names:
            full = f"{base}.{alias.name}"
            if full in MODULES:
                targets.add(full)
                aliases[alias.asname or alias.name] = full
            else:
                targets.add(base)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    private.append(f"{module}:{node.lineno} imports {alias.name} from {base}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            private.append(f"{module}:{node.lineno} reads {node.value.id}.{node.attr} of {aliases[node.value.id]}")
    targets.discard(module)
    return frozenset(t for t in targets if t in MODULES), tuple(private)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_has_no_cycle():
    graph = {m: _imports(m)[0] for m in MODULES}
    assert sum(len(v) for v in graph.values()) > len(MODULES)  # the graph was read
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_module_uses_a_private_name_of_another():
    private = [line for m in MODULES for line in _imports(m)[1]]
    assert not private, "\n".join(private)


def test_every_module_imports_alone():
    script = textwrap.dedent(f"""
        import importlib, json, sys, traceback, warnings
        warnings.simplefilter("ignore")
        failed = {{}}
        for name in {sorted(MODULES)!r}:
            for loaded in [m for m in sys.modules if m == "mrsdask" or m.startswith("mrsdask.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except BaseException:
                failed[name] = traceback.format_exc(limit=-3)
        print(json.dumps(failed))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE_DIR.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failed, "\n".join(f"{name}:\n{tb}" for name, tb in failed.items())


def test_reading_a_cube_does_not_load_the_cube_builder_kernels():
    script = ("import sys; import mrsdask.cube.reader; "
              "print(sorted(m for m in sys.modules if m == 'numba' or m.startswith('mrsdask.cube.kernels')))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=PACKAGE_DIR.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"
