"""The CLI contract: list, show, search, coverage, summary, and errors as one line with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlterms.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_has_100_rows(capsys):
    code, out, _ = run_cli(capsys, "list", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 100
    assert set(rows[0]) == {"number", "id", "title", "area", "implemented", "experiment"}
    assert [r["number"] for r in rows] == list(range(1, 101))


def test_list_area_filter(capsys):
    code, out, _ = run_cli(capsys, "list", "--area", "evaluation", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["id"] for r in rows} == {"precision", "recall", "f1-score", "roc-curve", "auc"}


def test_list_table(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "dropout" in out and "100 terms" in out


def test_show_prints_definition_and_related(capsys):
    code, out, _ = run_cli(capsys, "show", "17")
    assert code == 0 and "Dropout" in out and "related:" in out


def test_show_prints_keywords(capsys):
    code, out, _ = run_cli(capsys, "show", "optimizer")
    assert code == 0 and "includes: Adam, AdamW, RMSprop" in out
    from dlterms import glossary

    bare = next(e for e in glossary.entries() if not e.keywords)
    code, out, _ = run_cli(capsys, "show", bare.id)
    assert code == 0 and "includes:" not in out


def test_show_json_includes_last_result(capsys, tmp_path):
    from dlterms.run import Check, Result, save_result

    save_result(
        Result(
            term="dropout",
            number=17,
            title="Dropout",
            area="generalization",
            status="passed",
            seconds=1.0,
            seed=0,
            device="cpu",
            checks=[Check("c", True, 1, "> 0")],
        ),
        tmp_path,
    )
    code, out, _ = run_cli(capsys, "show", "dropout", "--json", "--results", str(tmp_path))
    d = json.loads(out)
    assert code == 0 and d["result"]["status"] == "passed" and d["id"] == "dropout"


def test_search_json_ranked(capsys):
    code, out, _ = run_cli(capsys, "search", "dropout", "--json", "--keywords")
    hits = json.loads(out)
    assert code == 0 and hits[0]["id"] == "dropout"
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["show", "dropuot"], "did you mean 'dropout'"),
        (["run", "dropuot"], "did you mean 'dropout'"),
        (["run", "ann", "--device", "tpu"], "device must be 'cpu', 'cuda' or 'auto', got 'tpu'"),
        (["run", "ann", "--jobs", "0"], "--jobs must be >= 1, got 0"),
        (["run"], "name at least one term"),
        (["list", "--area", "nope"], "invalid choice: 'nope'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["search", "x", "--limit", "0"], "--limit must be >= 1, got 0"),
        ([], "a command is needed"),
    ],
)
def test_usage_errors_are_one_line_exit_2(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_coverage_json(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "coverage", "--json", "--results", str(tmp_path))
    rows = json.loads(out)
    assert code == 0 and len(rows) == 100
    assert {"definition", "code", "reference_test", "experiment", "figure", "last_result"} <= set(rows[0])
    assert all(r["definition"] for r in rows)


def test_summary_with_no_results(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "summary", "--results", str(tmp_path))
    assert code == 0 and "no results" in out


def test_list_does_not_import_torch():
    """`dlterms list` stays quick because the glossary and CLI never import torch for it
    (its time is measured in benchmarks/, not here)."""
    code = "import sys; from dlterms.cli import main; main(['list', '--json']); print('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip().splitlines()[-1] == "False"
