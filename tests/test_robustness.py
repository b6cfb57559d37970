"""Seeds: SPEC parsing, the results layout, aggregation over seeds (against hand-computed values), the
several-seed runner, and robustness as the CLI and the site show it."""

from __future__ import annotations

import json
import math

import pytest

from dlterms import glossary
from dlterms import run as runmod
from dlterms.cli import main
from dlterms.robustness import aggregate, claim_key, format_seeds, load_seed_results, parse_seeds, report
from dlterms.run import Check, Result, run_many, save_result, seed_dir


def make(term="dropout", seed=0, checks=(), metrics=None, started="2026-01-01T00:00:00", key=None, error=None):
    e = glossary.get(term)
    checks = [Check(c, p, None, "") for c, p in checks]
    status = "error" if error else ("passed" if checks and all(c.passed for c in checks) else "failed")
    return Result(
        term=e.id,
        number=e.number,
        title=e.title,
        area=e.area,
        status=status,
        seconds=1.0,
        seed=seed,
        device="cpu",
        metrics=dict(metrics or {}),
        key_metric=key,
        checks=checks,
        error=error,
        started=started,
    )


def save_at(r: Result, root):
    return save_result(r, seed_dir(root, r.seed))


# --------------------------------------------------------------------------- SPEC


@pytest.mark.parametrize(
    "spec,seeds",
    [
        ("0-4", [0, 1, 2, 3, 4]),
        ("0,2,7", [0, 2, 7]),
        ("3", [3]),
        ("0-2,5", [0, 1, 2, 5]),
        (" 7 , 2-3 ", [2, 3, 7]),
        ("4-4", [4]),
        ("1,1,0", [0, 1]),
    ],
)
def test_parse_seeds(spec, seeds):
    assert parse_seeds(spec) == seeds
    assert parse_seeds(format_seeds(seeds)) == seeds


@pytest.mark.parametrize("spec", ["5-2", "x", "-1", "", " ", "1,,2", "0-", "1.5", "0-4-5", "-3-1", "a-b"])
def test_bad_seed_spec_is_a_value_error_naming_it(spec):
    with pytest.raises(ValueError, match="seeds") as info:
        parse_seeds(spec)
    assert repr(spec) in str(info.value)


def test_format_seeds():
    assert format_seeds([4, 0, 1, 2, 3]) == "0-4"
    assert format_seeds([0, 2, 7]) == "0,2,7"
    assert format_seeds([0, 1, 5]) == "0,1,5"
    assert format_seeds([]) == ""


def test_seed_dir_layout(tmp_path):
    assert seed_dir(tmp_path, 0) == tmp_path
    assert seed_dir(tmp_path, 3) == tmp_path / "seeds" / "3"
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            seed_dir(tmp_path, bad)


# --------------------------------------------------------------------------- aggregation


def test_claim_key_ignores_numbers_only():
    assert claim_key("seed 3: >= 80 % of 1000 samples") == claim_key("seed 4: >= 80 % of 1000 samples")
    assert claim_key("gap 0.071 (bound -2.5e-3)") == "gap # (bound #)"
    assert claim_key("A beats B") != claim_key("B beats A")


def test_aggregate_against_hand_computed_values():
    rs = {
        0: make(
            seed=0,
            checks=[("seed 0: acc >= 0.9", True), ("gap shrinks", True), ("gap shrinks", True)],
            metrics={"acc": 0.7, "steps": 10, "curve": [1, 2], "flag": True, "name": "x", "bad": "inf"},
            key="acc",
        ),
        1: make(
            seed=1,
            checks=[("seed 1: acc >= 0.9", False), ("gap shrinks", True), ("gap shrinks", False)],
            metrics={"acc": 0.8, "steps": 20},
            key="acc",
        ),
        2: make(
            seed=2,
            checks=[("seed 2: acc >= 0.9", True), ("gap shrinks", True), ("gap shrinks", True)],
            metrics={"acc": 0.9, "steps": 60, "only_here": 5.0},
            key="acc",
        ),
    }
    rob = aggregate(rs)
    assert rob.id == "dropout" and rob.seeds == [0, 1, 2]
    assert [(c.claim, c.held, c.of, c.failed_seeds) for c in rob.checks] == [
        ("seed 0: acc >= 0.9", 2, 3, [1]),
        ("gap shrinks", 3, 3, []),
        ("gap shrinks", 2, 3, [1]),  # the second "gap shrinks" pairs with the second, by position
    ]
    acc = rob.metrics["acc"]
    # mean (0.7 + 0.8 + 0.9) / 3 = 0.8; sample std sqrt((0.01 + 0 + 0.01) / 2) = 0.1
    assert acc.mean == pytest.approx(0.8, abs=1e-15) and acc.std == pytest.approx(0.1, abs=1e-15)
    assert (acc.min, acc.max, acc.n) == (0.7, 0.9, 3)
    steps = rob.metrics["steps"]
    # mean 30; deviations -20, -10, 30 -> sum of squares 1400, / 2 = 700
    assert steps.mean == 30 and steps.std == pytest.approx(math.sqrt(700), rel=1e-15)
    assert rob.metrics["only_here"].n == 1 and rob.metrics["only_here"].std is None
    assert set(rob.metrics) == {"acc", "steps", "only_here"}  # lists, booleans, strings, "inf" skipped
    assert rob.key_metric == "acc" and rob.key_spread is acc
    assert rob.passed_seeds == [0, 2] and rob.n_passed == 2 and not rob.holds_everywhere
    assert acc.text() == "0.8 ± 0.1, min 0.7, max 0.9 (3 seeds)"
    d = rob.to_dict()
    assert set(d) >= {"id", "seeds", "checks", "metrics"}
    assert d["checks"][0] == {"claim": "seed 0: acc >= 0.9", "held": 2, "of": 3, "failed_seeds": [1]}
    assert d["metrics"]["acc"] == {"mean": acc.mean, "std": acc.std, "min": 0.7, "max": 0.9}
    json.dumps(d)  # plain JSON


def test_aggregate_single_seed_and_missing_checks():
    one = aggregate([make(seed=4, checks=[("c", True)], metrics={"m": 2.5}, key="m")])
    assert one.seeds == [4] and one.holds_everywhere
    assert one.metrics["m"].to_dict() == {"mean": 2.5, "std": None, "min": 2.5, "max": 2.5}
    assert one.metrics["m"].text() == "2.5 (1 seed)"
    assert [(c.held, c.of) for c in one.checks] == [(1, 1)]

    # seed 3 raised after its first check: the second check counts as not held there
    rob = aggregate(
        {
            0: make(seed=0, checks=[("a", True), ("b", True)]),
            3: make(seed=3, checks=[("a", True)], error="Traceback ... boom"),
        }
    )
    assert rob.seeds == [0, 3] and rob.error_seeds == [3] and rob.passed_seeds == [0]
    assert [(c.claim, c.held, c.of, c.failed_seeds) for c in rob.checks] == [("a", 2, 2, []), ("b", 1, 2, [3])]
    # a check only a later seed recorded is listed after the others
    rob = aggregate([make(seed=0, checks=[("a", True)]), make(seed=1, checks=[("a", True), ("new", True)])])
    assert [(c.claim, c.held, c.of) for c in rob.checks] == [("a", 2, 2), ("new", 1, 2)]


def test_aggregate_empty_and_mixed_terms():
    rob = aggregate({}, term="dropout")
    assert rob.seeds == [] and rob.checks == [] and not rob.holds_everywhere
    with pytest.raises(ValueError, match="one term"):
        aggregate([make("dropout", 0), make("auc", 1)])


def test_tallies_follow_a_result_s_checks():
    r0 = make(seed=0, checks=[("seed 0: x", True), ("y", True)])
    rob = aggregate([r0, make(seed=1, checks=[("y", False), ("seed 1: x", True)])])
    assert [(t.held, t.of) for t in rob.tallies_for(r0)] == [(2, 2), (1, 2)]
    assert rob.tallies_for(make(seed=5, checks=[("z", True)])) == [None]


# --------------------------------------------------------------------------- loading the layout


def test_load_seed_results_reads_both_places(tmp_path):
    save_at(make("dropout", 0, [("c", True)]), tmp_path)
    save_at(make("dropout", 2, [("c", False)]), tmp_path)
    save_at(make("auc", 1, [("c", True)]), tmp_path)  # seed 1 only: no top-level file
    (tmp_path / "suite-timing.json").write_text('{"wall_seconds": 1}')
    (tmp_path / "seeds" / "2" / "broken.json").write_text("{not json")
    (tmp_path / "seeds" / "notes").mkdir()
    loaded = load_seed_results(tmp_path)
    assert {t: sorted(v) for t, v in loaded.items()} == {"dropout": [0, 2], "auc": [1]}
    robs = report(tmp_path)
    assert [r.id for r in robs] == ["dropout", "auc"]  # glossary order (17 before 43)
    assert [(r.id, r.n_passed, r.n_seeds) for r in robs] == [("dropout", 1, 2), ("auc", 1, 1)]
    assert load_seed_results(tmp_path / "nowhere") == {} and report(tmp_path / "nowhere") == []
    assert {t: sorted(v) for t, v in load_seed_results(tmp_path, term="dropout").items()} == {"dropout": [0, 2]}


def test_the_later_of_two_files_for_one_seed_wins(tmp_path):
    # `dlterms run --seed 2` wrote the top level; a later `--seeds 0-2` wrote seeds/2/
    save_result(make("dropout", 2, [("c", False)], started="2026-01-01T00:00:00"), tmp_path)
    save_at(make("dropout", 2, [("c", True)], started="2026-01-02T00:00:00"), tmp_path)
    assert load_seed_results(tmp_path)["dropout"][2].checks[0].passed
    save_result(make("dropout", 2, [("c", False)], started="2026-01-03T00:00:00"), tmp_path)
    assert not load_seed_results(tmp_path)["dropout"][2].checks[0].passed


# --------------------------------------------------------------------------- the runner


def test_run_many_saves_a_seed_beside_the_default(tmp_path, monkeypatch):
    def exp(run):
        run.metric("seed_seen", run.seed)
        run.check("ran", True)
        with run.figure("f") as fig:
            fig.subplots().plot([0, 1])

    monkeypatch.setitem(runmod._REGISTRY, "ann", exp)
    labels = []
    [r] = run_many(["ann"], seeds=[3], out=tmp_path, progress=lambda t, f, m: labels.append(t))
    assert (r.term, r.seed, r.metrics["seed_seen"]) == ("ann", 3, 3)
    assert (tmp_path / "seeds" / "3" / "ann.json").exists() and (tmp_path / "seeds" / "3" / "ann-f.svg").exists()
    assert not (tmp_path / "ann.json").exists()
    [r0] = run_many(["ann"], seeds=[0], out=tmp_path)
    assert (tmp_path / "ann.json").exists() and r0.seed == 0
    assert sorted(load_seed_results(tmp_path)["ann"]) == [0, 3]
    for bad, match in (([], "at least one seed"), ([1, 1], "must not repeat"), ([-2], "non-negative")):
        with pytest.raises(ValueError, match=match):
            run_many(["ann"], seeds=bad, out=tmp_path)


def test_run_many_runs_every_pair_and_survives_crashes(tmp_path, monkeypatch):
    """Each (term, seed) is its own job: two seeds of a term run side by side, and when both crash
    their worker, each is retried alone and reported as its own error."""
    import _runner_stub

    monkeypatch.setattr(runmod, "_worker_run", _runner_stub.worker_run)
    monkeypatch.setenv(_runner_stub.ENV, "crash=ann,stub=mlp")
    seen = []
    results = run_many(["ann", "mlp"], jobs=2, seeds=[0, 4], out=tmp_path, on_result=seen.append)
    assert [(r.term, r.seed) for r in results] == [("ann", 0), ("ann", 4), ("mlp", 0), ("mlp", 4)]
    assert [r.status for r in results] == ["error", "error", "passed", "passed"]
    assert all("crashed" in r.error for r in results[:2])
    # the crash is saved too, so an older result of that (term, seed) does not stand in for it
    assert load_seed_results(tmp_path)["ann"][4].status == "error"
    assert sorted((r.term, r.seed) for r in seen) == [("ann", 0), ("ann", 4), ("mlp", 0), ("mlp", 4)]


# --------------------------------------------------------------------------- CLI and site


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_seeds(tmp_path):
    root = tmp_path / "results"
    for s, acc, ok in ((0, 0.771, True), (1, 0.75, False)):
        save_at(
            make(
                "dropout",
                s,
                [(f"seed {s}: test acc >= 0.76", ok), ("dropout narrows the gap", True)],
                {"test_acc": acc},
                key="test_acc",
            ),
            root,
        )
    save_at(make("auc", 0, [("auc matches", True)], {"auc": 0.9}, key="auc"), root)
    return root


def test_cli_robustness_json_and_table(capsys, two_seeds, tmp_path):
    code, out, _ = run_cli(capsys, "robustness", "--results", str(two_seeds), "--json")
    rows = json.loads(out)
    assert code == 1  # a check failed at seed 1
    assert [r["id"] for r in rows] == ["dropout", "auc"]
    d = rows[0]
    assert d["seeds"] == [0, 1]
    assert [(c["claim"], c["held"], c["of"]) for c in d["checks"]] == [
        ("seed 0: test acc >= 0.76", 1, 2),
        ("dropout narrows the gap", 2, 2),
    ]
    m = d["metrics"]["test_acc"]
    assert m["mean"] == pytest.approx(0.7605) and m["std"] == pytest.approx(0.021 / math.sqrt(2))
    assert (m["min"], m["max"]) == (0.75, 0.771)

    code, out, _ = run_cli(capsys, "robustness", "--results", str(two_seeds))
    assert code == 1 and "dropout" in out and "1/2" in out and "not at 1" in out
    # --seeds: only those seeds count, and a registered experiment lacking one fails
    code, out, _ = run_cli(capsys, "robustness", "--results", str(two_seeds), "--seeds", "0", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 1 and rows["dropout"]["seeds"] == [0] and rows["dropout"]["missing_seeds"] == []
    assert rows["auc"]["missing_seeds"] == [] and rows["ann"]["missing_seeds"] == [0] and rows["ann"]["seeds"] == []
    code, out, _ = run_cli(capsys, "robustness", "--results", str(two_seeds), "--seeds", "0-1")
    assert code == 1 and "auc: no result for seed 1" in out
    code, _, err = run_cli(capsys, "robustness", "--results", str(two_seeds), "--seeds", "2-1")
    assert code == 2 and "--seeds" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli(capsys, "robustness", "--results", str(tmp_path / "empty"))
    assert code == 0 and "no results" in out
    code, out, _ = run_cli(capsys, "robustness", "--results", str(tmp_path / "empty"), "--json")
    assert code == 0 and json.loads(out) == []


def test_show_coverage_and_summary_report_robustness(capsys, two_seeds):
    code, out, _ = run_cli(capsys, "show", "dropout", "--results", str(two_seeds))
    assert code == 0 and "held on 1/2 seeds" in out and "held on 2/2 seeds" in out
    assert "robustness over seeds 0,1" in out and "0.76 ± 0.0148, min 0.75, max 0.771 (2 seeds)" in out
    code, out, _ = run_cli(capsys, "show", "dropout", "--results", str(two_seeds), "--json")
    assert json.loads(out)["robustness"]["seeds"] == [0, 1]
    code, out, _ = run_cli(capsys, "coverage", "--results", str(two_seeds), "--json")
    by = {r["id"]: r["robustness"] for r in json.loads(out)}
    assert by["dropout"] == {"seeds": [0, 1], "passed": 1, "of": 2}
    assert by["auc"] == {"seeds": [0], "passed": 1, "of": 1} and by["ann"] is None
    code, out, _ = run_cli(capsys, "coverage", "--results", str(two_seeds))
    assert code == 0 and "seeds" in out and "1/2" in out and "1/1" in out
    code, out, _ = run_cli(capsys, "summary", "--results", str(two_seeds))
    assert "seeds" in out and "1/2" in out


def test_run_seeds_json_one_result_per_pair(capsys, tmp_path, monkeypatch):
    def exp(run):
        run.check("seed is odd", run.seed % 2 == 1, observed=run.seed)

    monkeypatch.setitem(runmod._REGISTRY, "ann", exp)
    code, out, _ = run_cli(capsys, "run", "ann", "--seeds", "5", "--json", "--out", str(tmp_path))
    [d] = json.loads(out)
    assert code == 0 and (d["term"], d["seed"], d["status"]) == ("ann", 5, "passed")
    assert (tmp_path / "seeds" / "5" / "ann.json").exists()


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["run", "ann", "--seeds", "5-2"], "'5-2'"),
        (["run", "ann", "--seeds", "x"], "'x'"),
        (["run", "ann", "--seeds", "-1"], "'-1'"),
        (["run", "ann", "--seeds", ""], "--seeds: seeds must be"),
        (["run", "ann", "--seeds", "1,,2"], "'1,,2'"),
        (["run", "ann", "--seeds", "0-4", "--seed", "1"], "not both"),
        (["run", "ann", "--seed", "-3"], "--seed must be in 0..4294967295, got -3"),
    ],
)
def test_bad_seeds_are_one_line_exit_2(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_site_shows_held_on_k_of_n_and_spread(tmp_path, two_seeds):
    from dlterms.site.build import build_site

    site = tmp_path / "site"
    build_site(site, two_seeds)
    page = (site / "terms" / "dropout.html").read_text()
    assert "held on 1/2 seeds" in page and "held on 2/2 seeds" in page
    assert "every check held on <strong>1/2</strong> seeds" in page
    assert "0.76 ± 0.0148, min 0.75, max 0.771 (2 seeds)" in page
    assert "1/2 seeds" in (site / "index.html").read_text()
    coverage = (site / "coverage.html").read_text()
    assert "<th>Seeds passed</th>" in coverage and ">1/2</td>" in coverage and ">1/1</td>" in coverage
