"""The package's layering, read from the sources' imports (module-level and inside functions alike).

- No import cycle between dlterms modules.
- The glossary is plain data: it imports nothing of dlterms outside `dlterms.glossary`.
- Results are plain data too: `dlterms.results` imports nothing of dlterms but its version, and the data
  modules and the site read and write results through it, not through the runner (only the local
  server, which starts runs, imports `dlterms.run`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "dlterms"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The dlterms modules `name` imports. `from pkg import sub` counts as importing the submodule
    `pkg.sub` (and `pkg` only when some imported name is not a submodule)."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, base] if base else here)
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            if len(subs) < len(node.names):
                found.add(base)
            found.update(subs)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_import_graph_is_read():
    assert len(MODULES) > 50
    assert "dlterms.results" in GRAPH["dlterms.run"]
    assert "dlterms.nn.linear" in GRAPH["dlterms.nn"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("dlterms.glossary")])
def test_the_glossary_imports_nothing_of_the_library(name):
    outside = {m for m in GRAPH[name] if not m.startswith("dlterms.glossary") and m != "dlterms"}
    assert not outside, f"{name} imports {sorted(outside)}"


def test_results_are_plain_data():
    assert GRAPH["dlterms"] == set()  # the top package holds the version only
    assert GRAPH["dlterms.results"] <= {"dlterms"}


@pytest.mark.parametrize(
    "name", [m for m in MODULES if m.startswith(("dlterms.data", "dlterms.site")) and m != "dlterms.site.server"]
)
def test_data_and_site_do_not_import_the_runner(name):
    assert "dlterms.run" not in GRAPH[name]
