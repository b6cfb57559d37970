"""`dlterms sweep`: the grid x seeds as jobs over --jobs, the JSON (per value per seed the metric and
each check, mean/std/min/max per value) checked against numbers computed by hand, the figure, the
reading, one-line errors, and the default results never touched.

The grid runs through `run_many`'s worker pool with the runner's stand-in worker (tests/_runner_stub.py:
its metric is the seed plus the numeric parameters, so every statistic is known in advance); one real
sweep of quantization checks what lands on disk, including a grid point that is the default config."""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET

import pytest

import _runner_stub
from dlterms import run as runmod
from dlterms import sweep
from dlterms.cli import main
from dlterms.results import Check, Result

TERM = "quantization"


def _result(seed: int, metric: float, passed: list[bool], **config) -> Result:
    checks = [Check(f"claim {i}", p) for i, p in enumerate(passed)]
    return Result(
        term="t",
        number=1,
        title="T",
        area="a",
        status="passed" if all(passed) else "failed",
        seconds=0.1,
        seed=seed,
        device="cpu",
        metrics={"acc": metric, "other": 1.0},
        key_metric="acc",
        checks=checks,
        config=config,
        default=False,
    )


def test_summarize_matches_hand_computed_statistics():
    plan = sweep.Plan("t", "p", [0.1, 0.5], seeds=[0, 1, 2], question="Does p help?")
    accs = {0.1: [0.80, 0.84, 0.83], 0.5: [0.90, 0.91, 0.95]}
    marks = {0.1: [[True, True], [True, False], [True, True]], 0.5: [[True, True]] * 3}
    results = [_result(s, accs[v][i], marks[v][i], p=v) for v in (0.1, 0.5) for i, s in enumerate((0, 1, 2))]
    results.reverse()  # matched by their parameters and seed, not by position
    d = sweep.summarize(plan, results)
    assert d["metric"] == "acc" and d["values"] == [0.1, 0.5] and d["seeds"] == [0, 1, 2]
    for point, v in zip(d["points"], (0.1, 0.5), strict=True):
        assert point["value"] == v
        assert [r["metric"] for r in point["runs"]] == accs[v]
        assert [r["seed"] for r in point["runs"]] == [0, 1, 2]
        assert point["mean"] == pytest.approx(statistics.fmean(accs[v]), abs=1e-12)
        assert point["std"] == pytest.approx(statistics.stdev(accs[v]), abs=1e-12)
        assert (point["min"], point["max"]) == (min(accs[v]), max(accs[v]))
        assert [[c["passed"] for c in r["checks"]] for r in point["runs"]] == marks[v]
    low, high = d["points"]
    assert (low["all_checks_held"], high["all_checks_held"]) == (2, 3)
    assert low["checks"] == [{"claim": "claim 0", "held": 3, "of": 3}, {"claim": "claim 1", "held": 2, "of": 3}]
    assert d["reading"] == (
        f"acc highest at p=0.5 ({high['mean']:.3g} ± {high['std']:.3g}); lowest at p=0.1 "
        f"({low['mean']:.3g} ± {low['std']:.3g}); every check held at every seed for p = 0.5 only."
    )
    root = ET.fromstring(sweep.draw_svg(d))
    assert root.tag.endswith("svg")
    assert sweep.draw_svg(d) == sweep.draw_svg(d), "the figure is deterministic"


def test_summarize_by_a_second_parameter_groups_the_points():
    plan = sweep.Plan("t", "p", [0.0, 0.5], seeds=[0, 1], by="n", by_values=[100, 1000])
    assert plan.grid() == [{"p": 0.0, "n": 100}, {"p": 0.5, "n": 100}, {"p": 0.0, "n": 1000}, {"p": 0.5, "n": 1000}]
    results = [_result(s, 0.1 * k + s, [True], **plan.grid()[k]) for k in range(4) for s in (0, 1)]
    d = sweep.summarize(plan, results)
    assert [(p["value"], p["by"]) for p in d["points"]] == [(0.0, 100), (0.5, 100), (0.0, 1000), (0.5, 1000)]
    assert d["points"][3]["mean"] == pytest.approx(0.3 + 0.5)
    assert d["reading"].startswith("with n=100: acc highest at p=0.5")
    ET.fromstring(sweep.draw_svg(d))


def test_a_point_without_a_result_is_missing_not_passed():
    plan = sweep.Plan("t", "p", [1, 2], seeds=[0, 1])
    d = sweep.summarize(
        plan, [_result(0, 0.5, [True], p=1), _result(1, 0.7, [True], p=1), _result(0, 0.9, [True], p=2)]
    )
    assert [r["status"] for r in d["points"][1]["runs"]] == ["passed", "missing"]
    assert (d["points"][1]["all_checks_held"], d["points"][1]["of"], d["points"][1]["n"]) == (1, 2, 1)
    assert d["points"][1]["mean"] == 0.9 and d["points"][1]["std"] is None


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "epoch=1,2"], ["unknown parameter 'epoch'", "did you mean 'epochs'"]),
        (["--set", "epochs=1,two"], ["parameter 'epochs'", "'two'"]),
        (["--set", "epochs=1"], ["exactly one parameter takes several values"]),
        (["--set", "epochs=1,2", "--set", "lr=0.1,0.2"], ["'epochs', 'lr'"]),
        (["--set", "epochs=1,1"], ["must not repeat"]),
        (["--set", "epochs=1,,2"], ["empty items"]),
        (["--set", "epochs=0,1"], ["epochs", "0"]),
        (["--set", "epochs=1,2", "--by", "epochs=3,4"], ["another parameter"]),
        (["--set", "epochs=1,2", "--by", "lrr=0.1,0.2"], ["did you mean 'lr'"]),
        (["--by", "lr=0.1,0.2"], ["exactly one of"]),
        (["--declared", "--set", "epochs=1,2"], ["exactly one of"]),
        (["--set", "epochs=1,2", "--seeds", "2-1"], ["--seeds"]),
        (["--set", "epochs=1,2", "--jobs", "0"], ["--jobs"]),
        (["--declared", "--metric", "x"], ["--metric goes with --set"]),
    ],
)
def test_bad_sweep_is_one_line_and_exit_2(capsys, tmp_path, args, words):
    assert main(["sweep", TERM, "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err
    assert not any(tmp_path.iterdir())


def test_sweep_needs_a_term_or_all_declared(capsys):
    assert main(["sweep", "--set", "epochs=1,2"]) == 2
    assert "name the term" in capsys.readouterr().err
    assert main(["sweep", "--all-declared", TERM]) == 2
    assert "do not name a term" in capsys.readouterr().err


@pytest.fixture
def stubbed(monkeypatch):
    monkeypatch.setattr(runmod, "_worker_run", _runner_stub.worker_run)
    monkeypatch.setenv(_runner_stub.ENV, f"stub={TERM}")


def _default_files(out):
    """Stand-ins for the default results a sweep must leave alone, and their bytes."""
    files = [out / f"{TERM}.json", out / "seeds" / "1" / f"{TERM}.json", out / f"{TERM}-accuracy-vs-bits.svg"]
    for i, f in enumerate(files):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"default {i}\n", encoding="utf-8")
    return {f: f.read_bytes() for f in files}


def test_sweep_json_over_the_worker_pool_matches_hand_computed_values(stubbed, tmp_path, capsys):
    out = tmp_path / "r"
    kept = _default_files(out)
    args = ["sweep", TERM, "--set", "epochs=1,2,3", "--set", "repeats=1", "--seeds", "0-1", "--jobs", "2"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "every check held" in printed and "reading:" in printed
    assert {f: f.read_bytes() for f in kept} == kept
    d = json.loads((out / "sweeps" / TERM / "epochs--repeats=1.json").read_text(encoding="utf-8"))
    assert d["param"] == "epochs" and d["values"] == [1, 2, 3] and d["fixed"] == {"repeats": 1}
    assert d["metric"] == "stub_metric" and d["seeds"] == [0, 1]
    for point, epochs in zip(d["points"], (1, 2, 3), strict=True):
        expected = [seed + epochs + 1.0 for seed in (0, 1)]  # the stand-in's metric: seed + epochs + repeats
        assert [r["metric"] for r in point["runs"]] == expected
        assert point["mean"] == pytest.approx(statistics.fmean(expected), abs=1e-12)
        assert point["std"] == pytest.approx(statistics.stdev(expected), abs=1e-12)
        assert (point["min"], point["max"], point["all_checks_held"], point["of"]) == (*expected, 2, 2)
    ET.fromstring((out / "sweeps" / TERM / "epochs--repeats=1.svg").read_bytes())


def test_declared_sweep_runs_what_the_experiment_declares(stubbed, tmp_path, capsys):
    declared = runmod.declared_sweeps(TERM)[0]
    assert main(["sweep", TERM, "--declared", "--seeds", "0", "--jobs", "2", "--json", "--out", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)[0]
    assert d["declared"] is True and d["question"] == declared.question
    assert d["values"] == list(declared.values) and d["seeds"] == [0] and d["by"] == declared.by
    by_values = list(declared.by_values) or [None]
    assert [(p["value"], p.get("by")) for p in d["points"]] == [(v, b) for b in by_values for v in declared.values]
    # the stand-in's metric: seed 0 plus the numeric parameters of each point
    for p in d["points"]:
        numeric = [x for x in (p["value"], p.get("by")) if isinstance(x, int | float) and not isinstance(x, bool)]
        assert p["runs"][0]["metrics"]["stub_metric"] == float(sum(numeric))
    saved = json.loads((tmp_path / "sweeps" / TERM / f"{d['name']}.json").read_text(encoding="utf-8"))
    assert saved["points"] == d["points"]


def test_all_declared_plans_every_declared_sweep(monkeypatch, tmp_path, capsys):
    ran = []

    def record(plan, **kw):
        ran.append((plan.term, plan.param, tuple(plan.values), tuple(plan.seeds)))
        return sweep.summarize(plan, [_result(s, 0.5, [True], **g) for g in plan.grid() for s in plan.seeds])

    monkeypatch.setattr(sweep, "run_sweep", record)
    assert main(["sweep", "--all-declared", "--json", "--out", str(tmp_path)]) == 0
    expected = [
        (t, sw.param, tuple(sw.values), tuple(sw.seeds))
        for t in runmod.registered_ids()
        for sw in runmod.declared_sweeps(t)
    ]
    assert ran == expected and len(json.loads(capsys.readouterr().out)) == len(expected)


def test_a_real_sweep_keeps_the_default_results_and_records_each_run(tmp_path, capsys):
    """repeats=20 is quantization's default: that grid point is the default config, and still goes to
    sweeps/, never over <out>/quantization.json."""
    out = tmp_path / "r"
    kept = _default_files(out)
    args = ["sweep", TERM, "--set", "repeats=20,1", "--seeds", "0", "--jobs", "2", "--out", str(out)]
    code = main(args)
    capsys.readouterr()
    assert {f: f.read_bytes() for f in kept} == kept
    d = json.loads((out / "sweeps" / TERM / "repeats.json").read_text(encoding="utf-8"))
    runs = out / "sweeps" / TERM / "runs"
    saved = [
        json.loads((runs / f"{TERM}.json").read_text(encoding="utf-8")),
        json.loads((runs / "custom" / TERM / "repeats=1" / f"{TERM}.json").read_text(encoding="utf-8")),
    ]
    assert [r["default"] for r in saved] == [True, False]
    for point, r in zip(d["points"], saved, strict=True):
        assert point["runs"][0]["metric"] == r["metrics"][r["key_metric"]]
        assert [c["passed"] for c in point["runs"][0]["checks"]] == [c["passed"] for c in r["checks"]]
    assert code == (1 if any(r["status"] == "error" for r in saved) else 0)
