"""The layer's import graph: no cycle anywhere, the use cases never reach into the API or the adapters,
and the API reaches the adapters only through ports.

Every import counts, at module level and inside functions alike: an import moved into a function
still ties the two modules together, it only hides the tie from the interpreter until the call.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared"
PACKAGE = "t2v"


def _module_name(path: Path) -> str:
    parts = path.relative_to(LAYER).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted((LAYER / PACKAGE).rglob("*.py"))}


def _imported(module: str, path: Path) -> set[str]:
    """The layer's modules `module` imports anywhere in its body (a package counts as its `__init__`)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from t2v.usecases import poll` imports the submodule; `from t2v.jobs import JobRecord` a name.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != module)
    return found


GRAPH: dict[str, set[str]] = {name: _imported(name, path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as the path that closes it (`[a, b, a]`), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_graph_sees_module_and_function_level_imports() -> None:
    # Given a module that imports one layer module at its top and another inside a function
    assert "t2v.usecases.ports" in GRAPH["t2v.usecases.poll"]
    assert "t2v.dashscope" in GRAPH["t2v.wiring"]  # imported inside ProviderClients.__call__ only


def test_find_cycle_names_the_modules_of_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_layer_has_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)

    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _edge_imports(prefix: str) -> dict[str, set[str]]:
    return {
        name: {t for t in targets if t.startswith(("t2v.api", "t2v.adapters"))}
        for name, targets in GRAPH.items()
        if name.startswith(prefix)
    }


def test_no_use_case_imports_the_api_or_the_adapters() -> None:
    reached = {name: t for name, t in _edge_imports("t2v.usecases").items() if t}

    assert reached == {}


def test_the_api_edge_reaches_no_adapter() -> None:
    # The repository, the store and the timings come in through ports; wiring builds them.
    reached = {
        name: {t for t in targets if t.startswith("t2v.adapters")}
        for name, targets in _edge_imports("t2v.api").items()
    }

    assert {name: t for name, t in reached.items() if t} == {}
