"""NAS: search-space sampling and one-choice mutations, determinism, the budget, and evolution on a
toy objective with a known optimum (no reference library implements regularised evolution)."""

from __future__ import annotations

import random
import statistics

import pytest

from dlterms.methods.nas import SearchSpace, random_search, regularized_evolution


def _score(arch):  # toy objective: wide, shallow, relu, no dropout is best
    return sum(arch["widths"]) / len(arch["widths"]) / 256 + (arch["activation"] == "relu") - arch["dropout"]


def test_sample_and_mutation_change_one_choice():
    space, rng = SearchSpace(), random.Random(0)
    for _ in range(200):
        a = space.sample(rng)
        assert 1 <= len(a["widths"]) <= 3 and a["activation"] in space.activations
        b = space.mutate(a, rng)
        assert b != a
        changed = sum(a[k] != b[k] for k in ("activation", "dropout"))
        if a["widths"] != b["widths"]:
            changed += 1
            if len(a["widths"]) == len(b["widths"]):
                assert sum(x != y for x, y in zip(a["widths"], b["widths"])) == 1
        assert changed == 1
    assert space.size() == (5 + 25 + 125) * 3 * 3


def test_budget_is_respected_and_searches_are_deterministic():
    calls = []

    def ev(a):
        calls.append(a)
        return _score(a)

    evo = regularized_evolution(SearchSpace(), ev, 25, population_size=5, sample_size=2, seed=3)
    assert len(evo) == 25 and len(calls) == 25
    assert [t.arch for t in evo] == [t.arch for t in regularized_evolution(SearchSpace(), _score, 25, 5, 2, seed=3)]
    assert [t.arch for t in random_search(SearchSpace(), _score, 10, seed=1)] == [
        t.arch for t in random_search(SearchSpace(), _score, 10, seed=1)
    ]


def test_evolution_beats_random_on_a_smooth_objective():
    evo_best, rand_best = [], []
    for s in range(10):
        evo_best.append(max(t.score for t in regularized_evolution(SearchSpace(), _score, 60, 10, 4, seed=s)))
        rand_best.append(max(t.score for t in random_search(SearchSpace(), _score, 60, seed=s)))
    assert statistics.median(evo_best) > statistics.median(rand_best)


def test_errors():
    with pytest.raises(ValueError, match="budget"):
        random_search(SearchSpace(), _score, 0)
    with pytest.raises(ValueError, match="sample_size"):
        regularized_evolution(SearchSpace(), _score, 10, population_size=3, sample_size=5)
    with pytest.raises(ValueError, match="widths"):
        SearchSpace(widths=())


def test_architectures_enumerates_the_space_once_each():
    space = SearchSpace(depths=(1, 2), widths=(8, 16, 32), activations=("relu", "tanh"), dropouts=(0.0, 0.5))
    archs = space.architectures()
    assert len(archs) == space.size() == (3 + 9) * 2 * 2
    assert len({repr(sorted(a.items())) for a in archs}) == len(archs)
    rng = random.Random(0)
    keys = {repr(sorted(a.items())) for a in archs}
    assert all(repr(sorted(space.sample(rng).items())) in keys for _ in range(200))
