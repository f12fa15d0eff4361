"""The shape of the code (issue 12): no import circle inside `panel/`, each shared thing in one home.

The import graph is read from the source (ast), with the imports at module level AND inside functions: an
import deferred into a function to dodge a circle is still a circle. `from panel.x import y` is an edge to
`panel.x.y` when that is a module, else to `panel.x`. A package's `__init__` that imports its own
submodules (a section registering its views on its blueprint) is the package's own wiring, not an edge.
"""

import ast
from pathlib import Path

PANEL = Path(__file__).resolve().parents[2] / "panel"


def _module_name(path: Path) -> str:
    """`panel/rates/views.py` -> `panel.rates.views`; a package's __init__ is the package."""
    parts = list(path.relative_to(PANEL.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    """Every module of the panel package by name."""
    return {_module_name(path): path for path in PANEL.rglob("*.py")}


def _resolve(name: str, modules: dict) -> str | None:
    """The panel module an imported name refers to (a module, or the module holding the name)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict) -> set[str]:
    """The panel modules `module` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == "panel" or name.startswith("panel."):
                target = _resolve(name, modules)
                if target and target != module:
                    found.add(target)
    if path.name == "__init__.py":  # a package wiring its own submodules is not a dependency
        found = {t for t in found if not t.startswith(module + ".")}
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the panel modules it imports."""
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(node: str) -> None:
        work = [(node, iter(sorted(graph.get(node, ()))))]
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == current:
                        break
                if len(component) > 1:
                    result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def _path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One circle inside a component, written out (a -> b -> a), for the failure message."""
    members = set(component)
    start = component[0]
    trail, seen, node = [start], {start}, start
    while True:
        nxt = sorted(graph[node] & members)
        back = [n for n in nxt if n in seen]
        if back:
            trail.append(back[0])
            return " -> ".join(trail[trail.index(back[0]) :])
        node = nxt[0]
        trail.append(node)
        seen.add(node)


def test_cycle_finder_finds_a_planted_circle():
    """The finder itself: a -> b -> c -> a is one circle; d -> a is not part of it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert _path(graph, ["a", "b", "c"]) == "a -> b -> c -> a"
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_imports():
    """An import inside a function counts: the manager's use of the live calls module is seen."""
    graph = import_graph()
    assert "panel.livecalls" in graph["panel.manager"]
    assert "panel.access" in graph["panel.main.views"]


def test_no_import_circle_in_panel():
    """No module of `panel/` reaches itself through its imports (module- or function-level)."""
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(_path(graph, c) for c in found)


def test_no_module_over_600_lines():
    """Modules stay under 600 lines (the routing engine excepted)."""
    allowed = {"panel.routing.engine"}
    long = {
        name: n
        for name, path in _modules().items()
        if name not in allowed and (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert not long, f"modules over 600 lines: {long}"
