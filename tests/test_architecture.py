"""The app boundaries hold: no import cycle between the project's modules, no app reaching
into another app's views or private (`_`-prefixed) names, and the shared `web` app depending
on no other app. Read from the import graph (grimp), nested imports included."""

import ast
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "accounts",
    "audit",
    "config",
    "connectors",
    "diagnostics",
    "notifications",
    "platform_admin",
    "push",
    "records",
    "syncjobs",
    "web",
    "wpsim",
)


@pytest.fixture(scope="module")
def graph():
    # A TYPE_CHECKING import is for the type checker only: no cycle at run time.
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)


def strongly_connected(graph) -> list[list[str]]:
    """Tarjan's algorithm over the module graph: each group of modules that import one
    another, directly or round a loop."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []
    counter = [0]

    def visit(module):
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(graph.modules):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return groups


def test_no_import_cycles(graph):
    assert strongly_connected(graph) == []


def app_of(module: str) -> str:
    return module.split(".", 1)[0]


def test_no_app_imports_another_apps_views(graph):
    crossing = [
        (importer, imported)
        for imported in graph.modules
        if imported.endswith(".views") or ".views." in imported
        for importer in graph.find_modules_that_directly_import(imported)
        # config.urls mounts every app's pages: the one place that may.
        if app_of(importer) != app_of(imported) and importer != "config.urls"
    ]
    assert crossing == []


def test_no_app_imports_another_apps_private_names():
    crossing = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.ImportFrom) or not node.module or node.level:
                    continue
                if app_of(node.module) in PACKAGES and app_of(node.module) != package:
                    crossing += [
                        (str(path.relative_to(ROOT)), node.module, alias.name)
                        for alias in node.names
                        if alias.name.startswith("_")
                    ]
    assert crossing == []


def test_the_shared_web_app_imports_no_other_app(graph):
    imported = {
        app_of(target)
        for module in graph.find_children("web") | graph.find_descendants("web")
        for target in graph.find_modules_directly_imported_by(module)
    }
    assert imported <= {"web"}
