"""Every registered experiment runs and every one of its checks holds, at seed 0 and at seed 1.

The runs happen once per session in the `suite_results` fixture (every (term, seed) pair its own
job, two worker processes); each test here reads one pair's saved Result.
"""

from __future__ import annotations

import json

import pytest

from dlterms.run import Result, registered_ids, seed_dir

IDS = registered_ids()


@pytest.mark.experiment
@pytest.mark.parametrize("term", IDS)
def test_experiment_passes_every_check(term, ci_seed, suite_results):
    seed = ci_seed
    folder = seed_dir(suite_results, seed)
    path = folder / f"{term}.json"
    assert path.exists(), f"no result written for {term} at seed {seed}"
    r = Result.from_dict(json.loads(path.read_text()))
    assert r.term == term and r.seed == seed, f"{path} holds {r.term} at seed {r.seed}"
    assert r.error is None, f"{term} raised at seed {seed}:\n{r.error}"
    assert r.checks, f"{term} recorded no checks at seed {seed}"
    failed = [f"{c.claim}: observed {c.observed}, expected {c.expected}" for c in r.checks if not c.passed]
    assert not failed, f"{term} failed checks at seed {seed}:\n" + "\n".join(failed)
    for f in r.figures:
        svg = folder / f.path
        assert svg.exists() and svg.read_text().lstrip().startswith("<?xml"), f"{term}: figure {f.path} missing"


def test_ci_runs_two_seeds(ci_seeds):
    """Guards the second seed: every experiment must pass at seed 0 and at seed 1 in `make test`."""
    assert ci_seeds == (0, 1)


def test_some_experiments_are_registered():
    assert len(IDS) >= 1
