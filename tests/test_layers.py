"""The house's dependency rule, checked on the code itself.

Imports point down only: tools -> firmware, hal, dlms; firmware -> dlms;
hal and dlms import nothing of ours above them; no module-level import circles.
(Imports inside a function are lazy loads and allowed to reach across, e.g. a
command importing its work when it runs; they are still never allowed upward.)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("dlms", "firmware", "hal", "tools")
MAY_IMPORT = {
    "dlms": {"dlms"},
    "hal": {"hal"},
    "firmware": {"firmware", "dlms"},
    "tools": {"tools", "firmware", "hal", "dlms"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return "bijli." + ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool):
    """(imported module, at module level?) for every import of ours in ``tree``."""
    def walk(node, top: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, False)
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # annotations only
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("bijli."):
                        yield alias.name, top
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".")
                    base = base[:len(base) - child.level + (1 if is_package else 0)]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                if name.startswith("bijli."):
                    yield name, top
                    for alias in child.names:  # `from bijli.tools.node import config` imports a module
                        yield f"{name}.{alias.name}", top
            else:
                yield from walk(child, top)
    yield from walk(tree, True)


def _graph():
    modules = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            modules[_module_name(path)] = path
    edges: dict[str, set[str]] = {m: set() for m in modules}
    upward = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        layer = module.split(".")[1]
        for target, top in _imports(tree, module, path.name == "__init__.py"):
            parts = target.split(".")
            if len(parts) < 2 or parts[1] not in LAYERS:
                continue
            if parts[1] not in MAY_IMPORT[layer]:
                upward.append(f"{module} imports {target}")
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]  # an imported name, not a module
            if top and target in modules and target != module:
                edges[module].add(target)
    return edges, upward


def test_imports_point_down_only():
    _, upward = _graph()
    assert upward == []


def test_no_module_level_import_circles():
    edges, _ = _graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def strongconnect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in edges:
        if v not in index:
            strongconnect(v)
    assert cycles == []
