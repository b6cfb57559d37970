"""A term's experiment as a Jupyter notebook (nbformat 4) that runs top to bottom with dlterms installed.

    dlterms notebook TERM [--out PATH]

The cells, in order:

1. the term's definition (its entry's text) as Markdown;
2. the parameter cell: `cfg = Config(...)` with every declared field and its help as a comment
   (change a value and run all; an experiment that declares none gets no `cfg`);
3. the run context: a `Run` with the seed, one torch thread and the global RNGs seeded, as
   `dlterms run` does, its figures written to `<id>-figures/` beside the notebook;
4. the imports of the module-level names the experiment's body uses (read from the function's AST,
   each imported from where it is defined, else from the experiment's module);
5. the body of the experiment function, split into a few cells at its top-level statements; when
   the body cannot run at top level (a `return`, `yield`, `global` or `nonlocal` outside a nested
   function), one cell that calls the function with `run` and `cfg` instead;
6. the checks, printed as the CLI prints them (`dlterms.cli.check_line`), and the metrics;
7. the figures the run wrote, displayed inline (SVG).

So the notebook's checks are the CLI's: same code, same seed, same parameters (tests execute some
with nbclient and compare).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

MIN_CELL_LINES, MAX_CELL_LINES = 6, 24


def _experiment(term: str):
    from dlterms import glossary
    from dlterms.run import get_experiment

    entry = glossary.get(term)
    fn = inspect.unwrap(get_experiment(entry.id))
    return entry, fn, sys.modules[fn.__module__]


def _function_node(fn) -> tuple[ast.FunctionDef, list[str]]:
    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    return node, source.splitlines()


class _TopLevelOnly(ast.NodeVisitor):
    """Finds what cannot run outside a function: return, yield, global, nonlocal, await (not inside
    a nested function or class)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def generic_visit(self, node):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            return
        if isinstance(node, ast.Return | ast.Yield | ast.YieldFrom | ast.Global | ast.Nonlocal | ast.Await):
            self.found.append(type(node).__name__)
        super().generic_visit(node)


def _runs_at_top_level(body: list[ast.stmt]) -> bool:
    v = _TopLevelOnly()
    for stmt in body:
        v.generic_visit(stmt)
    return not v.found


def _used_globals(node: ast.FunctionDef, module: types.ModuleType, skip: set[str]) -> list[str]:
    """Names the body reads that it does not bind and the experiment's module defines or imports (in
    first-use order)."""
    bound = _locals_of(node) | set(skip)
    used: list[str] = []
    for stmt in node.body:  # not the decorator
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in used:
                used.append(n.id)
    return [name for name in used if name not in bound and hasattr(module, name) and not _builtin(name)]


def _locals_of(node: ast.FunctionDef) -> set[str]:
    """Names bound anywhere in the function (so a global of the same name is shadowed)."""
    out = {a.arg for a in node.args.args + node.args.kwonlyargs}
    for n in (m for stmt in node.body for m in ast.walk(stmt)):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(n.name)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
    return out


def _builtin(name: str) -> bool:
    return hasattr(builtins, name)


def _import_line(name: str, module: types.ModuleType) -> str:
    """How the notebook imports `name`: from where the object is defined when that module names it
    so, else from the experiment's module."""
    obj = getattr(module, name)
    if isinstance(obj, types.ModuleType):
        parent, _, leaf = obj.__name__.rpartition(".")
        if leaf == name and parent:
            return f"from {parent} import {name}"
        return f"import {obj.__name__}" if obj.__name__ == name else f"import {obj.__name__} as {name}"
    home = getattr(obj, "__module__", None)
    if isinstance(home, str) and home != module.__name__ and not home.startswith("_"):
        try:
            if getattr(importlib.import_module(home), name, None) is obj:
                return f"from {home} import {name}"
        except ImportError:
            pass
    return f"from {module.__name__} import {name}"


def _body_cells(node: ast.FunctionDef, lines: list[str]) -> list[str]:
    """The function's body (docstring left out) as source text, cut into cells at top-level
    statements: at a blank line once a cell has MIN_CELL_LINES lines (the author's paragraphs), and
    before a cell would pass MAX_CELL_LINES. Comments between statements are kept."""
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        if isinstance(body[0].value.value, str):
            body = body[1:]
    if not body:
        return []

    def first_line(stmt: ast.stmt) -> int:
        decos = getattr(stmt, "decorator_list", [])
        return min([stmt.lineno] + [d.lineno for d in decos])

    starts = [first_line(s) for s in body]
    # a comment block right above a statement belongs to it
    for i in range(1, len(starts)):
        k = starts[i]
        while k - 1 > body[i - 1].end_lineno and lines[k - 2].strip().startswith("#"):
            k -= 1
        starts[i] = k
    chunks = []
    for i, stmt in enumerate(body):
        end = starts[i + 1] - 1 if i + 1 < len(body) else stmt.end_lineno
        chunks.append(lines[starts[i] - 1 : end])
    cells, cur = [], []
    for text in chunks:
        if cur and len(cur) + len(text) > MAX_CELL_LINES:
            cells.append(cur)
            cur = []
        cur = cur + text
        if len(cur) >= MIN_CELL_LINES and not text[-1].strip():
            cells.append(cur)
            cur = []
    if cur:
        cells.append(cur)
    return [textwrap.dedent("\n".join(c)).strip("\n") for c in cells if "".join(c).strip()]


def _literal(value: Any) -> str:
    return repr(tuple(value) if isinstance(value, list) else value)


def build_notebook(term: str, seed: int = 0, config: dict[str, Any] | None = None, figures_dir: str | None = None):
    """The nbformat 4 notebook of `term`'s experiment (a `nbformat.NotebookNode`). `config` replaces
    parameter values in the parameter cell (validated like `dlterms run --set`); `figures_dir` is
    where the run writes its figures (default `<id>-figures`, relative to the kernel's folder)."""
    import nbformat
    from nbformat import v4

    from dlterms import params
    from dlterms.run import config_class

    entry, fn, module = _experiment(term)
    node, lines = _function_node(fn)
    argnames = [a.arg for a in node.args.args]
    run_name = argnames[0] if argnames else "run"
    cls = config_class(entry.id)
    cfg_name = argnames[1] if len(argnames) > 1 else "cfg"
    figures_dir = figures_dir or f"{entry.id}-figures"

    cells = []
    intro = f"# {entry.number}. {entry.title}\n\n{entry.definition.strip()}\n\n"
    intro += (
        f"*This notebook was written by `dlterms notebook {entry.id}`. It runs the experiment of "
        f"`dlterms run {entry.id}` step by step; change a parameter below and run all cells.*"
    )
    cells.append(v4.new_markdown_cell(intro))

    if cls is not None:
        cfg = params.build_config(cls, config or {}, term=entry.id)
        decl = params.params(cls)
        rows = [f"    {p.name}={_literal(getattr(cfg, p.name))},  # {p.help}".rstrip() for p in decl]
        param_src = (
            f"# The experiment's parameters; the defaults are the recorded run.\n"
            f"from {cls.__module__} import {cls.__name__}\n\n"
            f"{cfg_name} = {cls.__name__}(\n" + "\n".join(rows) + "\n)\n" + f"{cfg_name}"
        )
        cells.append(v4.new_markdown_cell("## Parameters"))
        cells.append(v4.new_code_cell(param_src))
    elif config:
        raise ValueError(f"experiment {entry.id!r} declares no parameters, got {sorted(config)}")

    cfg_arg = f", config={cfg_name}" if cls is not None else ""
    setup = (
        "# What `dlterms run` does around the experiment: one torch thread, every RNG seeded.\n"
        "from pathlib import Path\n\n"
        "import torch\n\n"
        "from dlterms.run import Run, seed_everything\n\n"
        "torch.set_num_threads(1)\n"
        f"seed_everything({seed})\n"
        f"{run_name} = Run({entry.id!r}, seed={seed}, device='cpu', out=Path({figures_dir!r}){cfg_arg})"
    )
    cells.append(v4.new_markdown_cell("## The run"))
    cells.append(v4.new_code_cell(setup))

    top_level = _runs_at_top_level(node.body)
    if top_level:
        names = _used_globals(node, module, skip=set(argnames))
        names = [n for n in names if n not in ("Run", "Path", "torch")]
        imports = sorted({_import_line(n, module) for n in names})
        body = _body_cells(node, lines)
        cells.append(v4.new_markdown_cell(f"## The experiment\n\nThe body of `{module.__name__}.{fn.__name__}`."))
        if imports:
            cells.append(v4.new_code_cell("\n".join(imports)))
        cells.extend(v4.new_code_cell(src) for src in body)
    else:
        call = f"{fn.__name__}({run_name}, {cfg_name})" if cls is not None else f"{fn.__name__}({run_name})"
        cells.append(
            v4.new_markdown_cell(
                f"## The experiment\n\nIts body returns early, so it cannot run cell by cell: the notebook "
                f"calls `{module.__name__}.{fn.__name__}` (read it there)."
            )
        )
        cells.append(v4.new_code_cell(f"from {module.__name__} import {fn.__name__}\n\n{call}"))

    checks = (
        "from dlterms.cli import check_line\n\n"
        f"print(f'{{sum(c.passed for c in {run_name}.checks)}}/{{len({run_name}.checks)}} checks held')\n"
        f"for ch in {run_name}.checks:\n"
        "    print(check_line(ch))\n"
        f"for name, value in {run_name}.metrics.items():\n"
        f"    print(f'{{name}} = {{value}}' + (' (key metric)' if name == {run_name}.key_metric else ''))"
    )
    cells.append(v4.new_markdown_cell("## Checks\n\nThe claims, as `dlterms run` prints them."))
    cells.append(v4.new_code_cell(checks))
    figures = (
        "from IPython.display import SVG, display\n\n"
        f"for f in {run_name}.figures:\n"
        "    print(f.alt)\n"
        f"    display(SVG(filename=str({run_name}.out / f.path)))"
    )
    cells.append(v4.new_markdown_cell("## Figures"))
    cells.append(v4.new_code_cell(figures))

    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["dlterms"] = {"term": entry.id, "seed": seed, "top_level": top_level}
    nbformat.validate(nb)
    return nb


def notebook_text(term: str, **kwargs) -> str:
    import nbformat

    return nbformat.writes(build_notebook(term, **kwargs))


def write_notebook(term: str, path: Path | str, **kwargs) -> Path:
    """Write `term`'s notebook to `path` (through a temporary file and a rename)."""
    from dlterms.results import atomic_write_text

    path = Path(path)
    atomic_write_text(path, notebook_text(term, **kwargs))
    return path
