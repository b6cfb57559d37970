r"""Hyper-parameter search: grid search and random search over a configuration.

A configuration is a dict of hyper-parameters (`{"lr": 1e-3, "width": 64}`). `objective(config)`
trains a model with it and returns its validation score. Grid search tries every combination of
the listed values; random search (Bergstra & Bengio, 2012, *Random Search for Hyper-Parameter
Optimization*) draws `n_trials` configurations independently from the given distributions. With
the same number of trials random search tries more distinct values of each hyper-parameter
($n$ instead of $n^{1/d}$ for $d$ of them on a grid), which wins when only a few of them matter.

The best configuration is the one with the highest score (`mode="max"`, e.g. accuracy) or the
lowest (`mode="min"`, e.g. a loss). Scores must come from validation data; score the chosen
configuration once on the test set afterwards.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Choice", "Uniform", "LogUniform", "IntUniform", "Trial", "SearchResult", "grid_search", "random_search"]


@dataclass(frozen=True)
class Choice:
    """One of `values`, uniformly."""

    values: Sequence[Any]

    def __post_init__(self):
        if len(self.values) == 0:
            raise ValueError("Choice needs at least one value, got none")

    def sample(self, rng: np.random.Generator):
        return self.values[int(rng.integers(len(self.values)))]


@dataclass(frozen=True)
class Uniform:
    """A float uniform on [low, high)."""

    low: float
    high: float

    def __post_init__(self):
        if not self.low < self.high:
            raise ValueError(f"need low < high, got low={self.low}, high={self.high}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class LogUniform:
    """A float whose logarithm is uniform on [log low, log high): for scales such as learning rates."""

    low: float
    high: float

    def __post_init__(self):
        if not 0 < self.low < self.high:
            raise ValueError(f"need 0 < low < high, got low={self.low}, high={self.high}")

    def sample(self, rng: np.random.Generator) -> float:
        # exp(U(log a, log b))
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class IntUniform:
    """An integer uniform on [low, high] (both included); `log=True` draws it log-uniformly."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self):
        if not self.low <= self.high or (self.log and self.low < 1):
            raise ValueError(f"need low <= high (and low >= 1 with log=True), got low={self.low}, high={self.high}")

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            return int(round(LogUniform(self.low - 0.5 + 1e-9, self.high + 0.5).sample(rng)))
        return int(rng.integers(self.low, self.high + 1))


@dataclass
class Trial:
    config: dict[str, Any]
    score: float


@dataclass
class SearchResult:
    """Every trial in the order run, and the best one."""

    trials: list[Trial] = field(default_factory=list)
    mode: str = "max"

    @property
    def best(self) -> Trial:
        finite = [t for t in self.trials if math.isfinite(t.score)]
        if not finite:
            raise ValueError("no trial produced a finite score, so there is no best configuration")
        pick = max if self.mode == "max" else min
        return pick(finite, key=lambda t: t.score)

    @property
    def best_config(self) -> dict[str, Any]:
        return dict(self.best.config)

    @property
    def best_score(self) -> float:
        return self.best.score


def _check_mode(mode: str) -> None:
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")


def grid_search(
    objective: Callable[[dict[str, Any]], float],
    grid: Mapping[str, Sequence[Any]],
    base: Mapping[str, Any] | None = None,
    mode: str = "max",
) -> SearchResult:
    """Score every combination of `grid`'s values (each merged into `base`)."""
    _check_mode(mode)
    for k, vs in grid.items():
        if len(vs) == 0:
            raise ValueError(f"grid[{k!r}] has no values")
    result = SearchResult(mode=mode)
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        config = {**(base or {}), **dict(zip(keys, values))}
        result.trials.append(Trial(config, float(objective(config))))
    return result


def random_search(
    objective: Callable[[dict[str, Any]], float],
    space: Mapping[str, Any],
    n_trials: int,
    seed: int = 0,
    base: Mapping[str, Any] | None = None,
    mode: str = "max",
) -> SearchResult:
    """Score `n_trials` configurations drawn from `space` (distributions or fixed values), seeded."""
    _check_mode(mode)
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    rng = np.random.default_rng(seed)
    result = SearchResult(mode=mode)
    for _ in range(n_trials):
        config = dict(base or {})
        for k, dist in space.items():
            config[k] = dist.sample(rng) if hasattr(dist, "sample") else dist
        result.trials.append(Trial(config, float(objective(config))))
    return result
