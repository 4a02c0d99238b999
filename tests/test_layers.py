"""The code's shape: imports flow one way, no circles between modules or between
packages, no private names borrowed across modules. Modules are cut by job, not by a
line count. Walks every import statement with `ast`, those inside
functions included (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "harness"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The harness module an import names: `harness.store.Store` -> `harness.store`."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(imported module, the names taken from it) for every import of `module`."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [alias.name for alias in node.names]
            # `from harness.search import runner` imports the module harness.search.runner.
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            found += [(s, []) for s in submodules]
            found.append((base, [n for n in names if f"{base}.{n}" not in MODULES]))
    return [(target, names) for target, names in found if target.startswith("harness")]


GRAPH = {
    module: {t for name, _ in _imports(module) if (t := _resolve(name)) and t != module}
    for module in MODULES
}


def test_the_walk_sees_lazy_imports():
    # `harness run` imports harness.trial only inside a function, to keep --help fast.
    top_level = ast.parse(MODULES["harness.commands.run"].read_text()).body
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "harness.trial" for n in top_level)
    assert "harness.trial" in GRAPH["harness.commands.run"]
    assert len(MODULES) > 50


def test_only_the_cli_and_the_commands_import_the_commands():
    reaching_up = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if target.startswith("harness.commands")
        and not module.startswith("harness.commands")
        and module != "harness.cli"
    )
    assert reaching_up == []


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            if component:
                found.append(sorted([node, *component]))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _between_modules(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package's __init__ only re-exports its modules; a module reaching a sibling
    # through it is not a circle between modules.
    return {
        m: {t for t in targets if not _is_package(t)}
        for m, targets in graph.items()
        if not _is_package(m)
    }


def test_no_import_circle_between_modules():
    assert _cycles(_between_modules(GRAPH)) == []


def test_a_real_circle_would_be_found(monkeypatch):
    monkeypatch.setitem(GRAPH, "harness.stats", GRAPH["harness.stats"] | {"harness.tables"})
    monkeypatch.setitem(GRAPH, "harness.tables", GRAPH["harness.tables"] | {"harness.stats"})
    assert ["harness.stats", "harness.tables"] in _cycles(_between_modules(GRAPH))


def test_no_private_name_is_imported_from_another_module():
    borrowed = sorted(
        f"{module}: {name} from {target}"
        for module in MODULES
        for target, names in _imports(module)
        for name in names
        if name.startswith("_") and not name.startswith("__") and _resolve(target) != module
    )
    assert borrowed == []


def _package(module: str) -> str | None:
    """The subpackage a module belongs to (`harness.search.runner` -> `harness.search`, the
    face `harness.search` -> itself); None for a top-level module such as harness.strategy,
    which may sit above several packages."""
    parts = module.split(".")
    if _is_package(module) and len(parts) > 1:
        return module if module != "harness" else None
    return ".".join(parts[:2]) if len(parts) > 2 else None


def _between_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # Every edge counts here, those into a package's __init__ too: a module that takes
    # a name from `harness.estimate` depends on that package all the same.
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        source = _package(module)
        for target in targets:
            into = _package(target)
            if source and into and source != into:
                packages.setdefault(source, set()).add(into)
    return packages


def test_packages_do_not_import_each_other():
    assert _cycles(_between_packages(GRAPH)) == []


def test_two_packages_leaning_on_each_other_would_be_found(monkeypatch):
    # The shape this test was written against: search's run strategy used estimate's
    # ranking while estimate read search's space, through the package faces.
    monkeypatch.setitem(
        GRAPH, "harness.search.runner", GRAPH["harness.search.runner"] | {"harness.estimate"}
    )
    assert ["harness.estimate", "harness.search"] in _cycles(_between_packages(GRAPH))
