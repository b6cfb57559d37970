"""The runner: registration, Result round-trip, atomic writes, failures and crashes as data."""

from __future__ import annotations

import json
import os

import pytest

from dlterms import results
from dlterms import run as runmod
from dlterms.run import Check, Result, Run, atomic_write_text, experiment, load_result, save_result


def test_result_round_trips_through_json(tmp_path):
    r = Result(
        term="ann",
        number=1,
        title="ANN",
        area="foundations",
        status="passed",
        seconds=1.5,
        seed=0,
        device="cpu",
        metrics={"acc": 0.98, "inf": float("inf")},
        checks=[Check("acc high", True, 0.98, ">= 0.97")],
    )
    save_result(r, tmp_path)
    back = load_result("ann", tmp_path)
    assert back.to_dict() == json.loads((tmp_path / "ann.json").read_text())
    assert back.checks[0].passed and back.metrics["inf"] == "inf"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.json"]


def test_run_records_metrics_checks_and_figures(tmp_path):
    run = Run("ann", seed=3, out=tmp_path)
    run.metric("a", 1.0)
    run.metric("b", 2.0, key=True)
    assert run.key_metric == "b"
    assert run.check("holds", 1 < 2, observed=1, expected="< 2") is True
    assert run.check("fails", False) is False
    with run.figure("curve", alt="a line") as fig:
        fig.subplots().plot([0, 1], [1, 0])
    svg = (tmp_path / "ann-curve.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and run.figures[0].alt == "a line"
    assert run.rng(1).integers(1000) == Run("x", seed=3).rng(1).integers(1000)


def test_run_experiment_turns_exceptions_and_failed_checks_into_results(tmp_path, monkeypatch):
    def broken(run):
        raise RuntimeError("kaboom")

    monkeypatch.setitem(runmod._REGISTRY, "ann", broken)
    r = runmod.run_experiment("ann", out=tmp_path)
    assert r.status == "error" and "kaboom" in r.error
    assert (tmp_path / "ann.json").exists()

    def failing(run):
        run.check("impossible", False, observed=0, expected="> 1")

    monkeypatch.setitem(runmod._REGISTRY, "ann", failing)
    r = runmod.run_experiment("ann", out=tmp_path)
    assert r.status == "failed" and r.n_passed == 0

    def silent(run):
        run.metric("x", 1)

    monkeypatch.setitem(runmod._REGISTRY, "ann", silent)
    r = runmod.run_experiment("ann", out=tmp_path)
    assert r.status == "error" and "recorded no checks" in r.error


def test_bad_device_and_jobs():
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'auto', got 'tpu'"):
        runmod.resolve_device("tpu")
    with pytest.raises(ValueError, match="jobs must be >= 1, got 0"):
        runmod.run_many(["ann"], jobs=0)


def test_experiment_registered_twice_is_an_error():
    def one(run): ...

    def two(run): ...

    experiment("zz-test-term")(one)
    with pytest.raises(ValueError, match="registered twice"):
        experiment("zz-test-term")(two)
    runmod._REGISTRY.pop("zz-test-term")


def test_run_many_survives_a_crashing_worker(tmp_path, monkeypatch):
    """A worker killed mid-run is reported as an error; the others still complete."""
    import _runner_stub

    monkeypatch.setattr(runmod, "_worker_run", _runner_stub.worker_run)
    monkeypatch.setenv(_runner_stub.ENV, "crash=ann,stub=mlp,stub=tensor")
    seen = []
    results = runmod.run_many(["ann", "mlp", "tensor"], jobs=2, out=tmp_path, on_result=seen.append)
    by = {r.term: r for r in results}
    assert by["ann"].status == "error" and "crashed" in by["ann"].error
    assert by["mlp"].status == "passed" and by["tensor"].status == "passed"
    assert [r.term for r in results] == ["ann", "mlp", "tensor"]
    assert sorted(r.term for r in seen) == ["ann", "mlp", "tensor"]


def test_workers_get_the_malloc_setting_and_the_callers_environment_is_restored(tmp_path, monkeypatch):
    import os

    import _runner_stub

    monkeypatch.setattr(runmod, "_worker_run", _runner_stub.worker_run)
    monkeypatch.setenv(_runner_stub.ENV, "stub=mlp,stub=tensor")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TOP_PAD_", "4096")  # the caller's own value is kept
    results = runmod.run_many(["mlp", "tensor"], jobs=2, out=tmp_path)
    assert [r.metrics["malloc_trim_threshold"] for r in results] == [float(1 << 31)] * 2
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ
    assert os.environ["MALLOC_TOP_PAD_"] == "4096"


def test_run_experiment_leaves_the_callers_threads_and_random_states(tmp_path, monkeypatch):
    """Called from Python, a run has one thread and seeded RNGs inside, and gives the caller back its
    own thread count and Python, NumPy and torch random streams afterwards, also when it raises."""
    import random

    import numpy as np
    import torch

    inside = {}

    def greedy(run):
        inside["threads"] = torch.get_num_threads()
        inside["draws"] = (random.random(), float(np.random.rand()), float(torch.rand(1)))
        torch.set_num_threads(3)
        random.seed(123)
        np.random.seed(123)
        torch.manual_seed(123)
        run.check("ran", True)

    def raising(run):
        random.random(), np.random.rand(), torch.rand(5)
        torch.set_num_threads(3)
        raise RuntimeError("kaboom")

    threads = torch.get_num_threads()
    try:
        for fn, status in ((greedy, "passed"), (raising, "error")):
            monkeypatch.setitem(runmod._REGISTRY, "ann", fn)
            torch.set_num_threads(2)
            random.seed(7)
            np.random.seed(7)
            torch.manual_seed(7)
            expect = (random.random(), float(np.random.rand()), float(torch.rand(1)))
            random.seed(7)
            np.random.seed(7)
            torch.manual_seed(7)
            r = runmod.run_experiment("ann", seed=5, out=tmp_path)
            assert r.status == status
            assert torch.get_num_threads() == 2
            assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expect
        assert inside["threads"] == 1
        runmod.seed_everything(5)
        assert inside["draws"] == (random.random(), float(np.random.rand()), float(torch.rand(1)))
    finally:
        torch.set_num_threads(threads)


def test_comparison_checks_write_expected_from_the_threshold(tmp_path):
    run = Run("ann", out=tmp_path)
    assert run.check_ge("acc high", 0.951234567, 0.95) is True
    assert run.check_ge("acc strictly above", 0.95, 0.95, strict=True) is False
    assert run.check_le("error low", 2e-7, 1e-6) is True
    assert run.check_le("error strictly below", 1e-6, 1e-6, strict=True) is False
    assert run.check_between("slope", -1.0, -1.2, -0.8) is True
    assert run.check_between("slope", -0.7, -1.2, -0.8) is False
    assert run.check_ge("nan never passes", float("nan"), 0.0) is False
    assert [c.expected for c in run.checks] == [
        ">= 0.95",
        "> 0.95",
        "<= 1e-06",
        "< 1e-06",
        "in [-1.2, -0.8]",
        "in [-1.2, -0.8]",
        ">= 0",
    ]
    assert run.checks[0].observed == 0.95123  # five significant digits are kept
    with pytest.raises(ValueError, match="low must be <= high"):
        run.check_between("bad", 0.0, 1.0, 0.0)


def test_recorded_floats_keep_five_significant_digits(tmp_path):
    from dlterms.run import rounded

    run = Run("ann", out=tmp_path)
    assert run.metric("acc", 0.123456789) == 0.123456789  # the caller gets the value itself
    run.metric("tiny", 1.23456789e-9)
    run.metric("curve", [0.333333333, 2, {"x": 12345.678}])
    run.metric("exact", 0.123456789, digits=None)
    run.metric("count", 123456789)
    assert run.metrics == {
        "acc": 0.12346,
        "tiny": 1.2346e-9,
        "curve": [0.33333, 2, {"x": 12346.0}],
        "exact": 0.123456789,
        "count": 123456789,
    }
    assert rounded("inf") == "inf" and rounded(float("inf")) == float("inf")
    with pytest.raises(ValueError, match="digits must be"):
        rounded(1.0, digits=0)
