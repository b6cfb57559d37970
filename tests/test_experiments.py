"""Every registered experiment runs and every one of its checks holds.

The runs happen once per session in the `suite_results` fixture (two worker processes); each
test here reads one term's saved Result.
"""

from __future__ import annotations

import json

import pytest

from dlterms.run import Result, registered_ids

IDS = registered_ids()


@pytest.mark.experiment
@pytest.mark.parametrize("term", IDS)
def test_experiment_passes_every_check(term, suite_results):
    path = suite_results / f"{term}.json"
    assert path.exists(), f"no result written for {term}"
    r = Result.from_dict(json.loads(path.read_text()))
    assert r.error is None, f"{term} raised:\n{r.error}"
    assert r.checks, f"{term} recorded no checks"
    failed = [f"{c.claim}: observed {c.observed}, expected {c.expected}" for c in r.checks if not c.passed]
    assert not failed, f"{term} failed checks:\n" + "\n".join(failed)
    for f in r.figures:
        svg = suite_results / f.path
        assert svg.exists() and svg.read_text().lstrip().startswith("<?xml"), f"{term}: figure {f.path} missing"


def test_some_experiments_are_registered():
    assert len(IDS) >= 1
