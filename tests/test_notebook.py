"""`dlterms notebook`: an nbformat 4 notebook that runs top to bottom with a real kernel (nbclient +
ipykernel) and prints the same checks as the CLI's run of the same term, seed and parameters.

A handful of cheap terms are executed (a few seconds each); the rest of the tests only build and
inspect notebooks."""

from __future__ import annotations

import ast
import json
import os

import nbformat
import pytest

from dlterms import glossary, notebook, params
from dlterms.cli import check_line, main
from dlterms.run import config_class, run_experiment

# (term, parameter overrides): cheap experiments; quantization declares a Config and is made cheaper
EXECUTED = [
    ("quantization", {"epochs": 2, "repeats": 1}),
    ("tensor", None),
    ("softmax", None),
    ("convolution", None),
]


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _execute(nb, folder):
    from nbclient import NotebookClient

    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's deprecation warning otherwise
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return nb


def _printed(nb) -> str:
    return "".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "stream"
    )


def _overrides(term, config):
    cls = config_class(term)
    assert cls is not None or not config, f"{term} declares no parameters, so {config} cannot be set"
    return config if cls is not None else None


@pytest.mark.parametrize(("term", "config"), EXECUTED, ids=[t for t, _ in EXECUTED])
def test_notebook_runs_top_to_bottom_and_its_checks_are_the_clis(tmp_path, term, config):
    config = _overrides(term, config)
    nb = notebook.build_notebook(term, config=config)
    nbformat.validate(nb)
    _execute(nb, tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    cli = run_experiment(term, config=config, save=False)
    assert cli.status != "error", cli.error
    expected = [f"{cli.n_passed}/{len(cli.checks)} checks held"] + [check_line(ch) for ch in cli.checks]
    printed = _printed(nb).splitlines()
    start = printed.index(expected[0])
    assert printed[start : start + len(expected)] == expected
    svgs = [o for c in nb.cells for o in c.get("outputs", []) if "image/svg+xml" in o.get("data", {})]
    assert len(svgs) == len(cli.figures), "every figure the run wrote is shown inline"
    assert (tmp_path / f"{term}-figures").is_dir() or not cli.figures


def test_the_parameter_cell_has_every_field_with_its_help():
    term = "quantization"
    nb = notebook.build_notebook(term, config={"epochs": 7})
    (cell,) = [s for s in _code(nb) if "= Config(" in s]
    for p in params.params(config_class(term)):
        line = next(ln for ln in cell.splitlines() if ln.strip().startswith(f"{p.name}="))
        assert line.rstrip().endswith(f"# {p.help}")
    assert "epochs=7," in cell
    ast.parse(cell)
    assert nb.cells[0].cell_type == "markdown"
    assert glossary.get(term).definition.strip() in nb.cells[0].source
    assert any("check_line" in s for s in _code(nb)) and any("SVG" in s for s in _code(nb))


def test_notebook_cells_are_the_function_body_with_its_imports():
    term = "quantization"
    nb = notebook.build_notebook(term)
    code = _code(nb)
    assert nb.metadata["dlterms"]["top_level"] is True
    imports = next(s for s in code if s.startswith("from dlterms.data"))
    for name in ("digits", "fit", "quantize_dynamic"):
        assert f"import {name}" in imports
    assert "Sweep" not in imports and "experiment" not in imports.split("import")[-1], "not the decorator's names"
    body = [s for s in code if "run.check(" in s or "run.metric(" in s]
    assert len(body) >= 2
    for s in code:
        ast.parse(s)


def test_a_body_that_cannot_run_at_top_level_falls_back_to_calling_the_function():
    src = "def f(run, cfg):\n    if cfg.x:\n        return\n    run.check('a', True)\n"
    body = ast.parse(src).body[0].body
    assert notebook._runs_at_top_level(body) is False
    nested = "def f(run):\n    def g():\n        return 1\n    run.check('a', g() == 1)\n"
    assert notebook._runs_at_top_level(ast.parse(nested).body[0].body) is True


def test_cli_notebook_writes_a_valid_file_and_refuses_bad_targets(tmp_path, capsys):
    target = tmp_path / "nb" / "q.ipynb"
    assert main(["notebook", "quantization", "--out", str(target)]) == 0
    nb = nbformat.read(target, as_version=4)
    nbformat.validate(nb)
    assert json.loads(target.read_text(encoding="utf-8"))["nbformat"] == 4
    capsys.readouterr()
    assert main(["notebook", "quantization", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["notebook", "no-such-term-at-all"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
