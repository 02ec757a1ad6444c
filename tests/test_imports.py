"""Import hygiene (docs/architecture.md): no import cycle between modules, counting imports
inside functions too, and packages import each other one way except the named exceptions."""
import ast
from pathlib import Path

import fadenn_tf

ROOT = Path(fadenn_tf.__file__).parent
# Two-way package pairs allowed: none (deploy sits below inference: inference.litert runs a
# TFLite file through deploy.litert and load_litert converts with deploy; data below noise;
# the failure detector in fitcheck below inference and tracking).
ALLOWED_PACKAGE_PAIRS = set()


def _module_graph():
    files = {}
    for f in ROOT.rglob("*.py"):
        parts = ("fadenn_tf",) + f.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f

    def resolve(name):               # the module (or package) a dotted name lives in
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for mod, f in files.items():
        deps = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fadenn_tf"):
                deps.update(resolve(f"{node.module}.{a.name}") for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(resolve(a.name) for a in node.names
                            if a.name.startswith("fadenn_tf"))
        graph[mod] = deps - {mod, ""}
    return graph


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, path = {}, []

    def visit(m):
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        path.pop()
        state[m] = 2
        return None
    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle_between_modules():
    cycle = _cycle(_module_graph())
    assert cycle is None, " -> ".join(cycle)


def test_packages_import_each_other_one_way():
    pkg = lambda m: m.split(".")[1] if m.count(".") else None  # noqa: E731
    edges = {(pkg(a), pkg(b)) for a, deps in _module_graph().items() for b in deps
             if pkg(a) and pkg(b) and pkg(a) != pkg(b)}
    two_way = {tuple(sorted(e)) for e in edges if e[::-1] in edges}
    assert two_way <= ALLOWED_PACKAGE_PAIRS, sorted(two_way - ALLOWED_PACKAGE_PAIRS)
