r"""Neural architecture search: a search space, random search, and regularised evolution.

An architecture is a point $a$ of a discrete search space $\mathcal{A}$ (here: depth, width per layer,
activation and dropout of an MLP). A search strategy proposes architectures, each is trained
briefly and scored on validation data, $s(a) = \mathrm{acc}_{\text{val}}(\mathrm{train}(a))$, and the
best found within a budget of $N$ evaluations is returned:

$$\hat a = \arg\max_{a \in \{a_1, \dots, a_N\}} s(a)$$

Random search (Bergstra & Bengio, 2012) draws every $a_i$ uniformly from $\mathcal{A}$. Regularised
(aging) evolution (Real et al., "Regularized Evolution for Image Classifier Architecture Search",
AAAI 2019) keeps a population of the $P$ most recent architectures; each step samples $S$ of them,
copies the best of the sample with one random mutation (one choice changed), evaluates the child, adds
it and removes the *oldest* member (not the worst), which keeps the search from clinging to one lucky
early score. Because $\hat a$ is chosen on validation data, its quality must be confirmed on a test set.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["SearchSpace", "Trial", "random_search", "regularized_evolution"]


@dataclass(frozen=True)
class SearchSpace:
    """The choices of an MLP architecture: `depth` hidden layers, each with a width from `widths`."""

    depths: tuple[int, ...] = (1, 2, 3)
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    activations: tuple[str, ...] = ("relu", "tanh", "gelu")
    dropouts: tuple[float, ...] = (0.0, 0.1, 0.3)

    def __post_init__(self):
        for name in ("depths", "widths", "activations", "dropouts"):
            if not getattr(self, name):
                raise ValueError(f"{name} must offer at least one choice")

    def sample(self, rng: random.Random) -> dict:
        depth = rng.choice(self.depths)
        return {
            "widths": tuple(rng.choice(self.widths) for _ in range(depth)),
            "activation": rng.choice(self.activations),
            "dropout": rng.choice(self.dropouts),
        }

    def mutate(self, arch: dict, rng: random.Random) -> dict:
        """A copy of `arch` with one choice changed (depth, one layer's width, activation or dropout)."""
        arch = {**arch, "widths": tuple(arch["widths"])}
        for _ in range(100):  # retry until the change is a real change
            kind = rng.choice(["depth", "width", "activation", "dropout"])
            new = {**arch}
            if kind == "depth":
                d = rng.choice(self.depths)
                w = list(arch["widths"])[:d]
                new["widths"] = tuple(w + [rng.choice(self.widths) for _ in range(d - len(w))])
            elif kind == "width":
                w = list(arch["widths"])
                w[rng.randrange(len(w))] = rng.choice(self.widths)
                new["widths"] = tuple(w)
            elif kind == "activation":
                new["activation"] = rng.choice(self.activations)
            else:
                new["dropout"] = rng.choice(self.dropouts)
            if new != arch:
                return new
        return arch

    def architectures(self) -> list[dict]:
        """Every architecture of the space, in a fixed order (len == `size()`), e.g. to tabulate all scores."""
        out = []
        for depth in self.depths:
            for widths in itertools.product(self.widths, repeat=depth):
                for act in self.activations:
                    for p in self.dropouts:
                        out.append({"widths": tuple(widths), "activation": act, "dropout": p})
        return out

    def size(self) -> int:
        return sum(len(self.widths) ** d for d in self.depths) * len(self.activations) * len(self.dropouts)


@dataclass
class Trial:
    arch: dict
    score: float


@dataclass
class _History:
    trials: list[Trial] = field(default_factory=list)


def _check_budget(budget: int) -> None:
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")


def random_search(space: SearchSpace, evaluate: Callable[[dict], float], budget: int, seed: int = 0) -> list[Trial]:
    """`budget` architectures drawn uniformly, each scored by `evaluate(arch)` (higher is better)."""
    _check_budget(budget)
    rng = random.Random(seed)
    return [Trial(a, evaluate(a)) for a in (space.sample(rng) for _ in range(budget))]


def regularized_evolution(
    space: SearchSpace,
    evaluate: Callable[[dict], float],
    budget: int,
    population_size: int = 8,
    sample_size: int = 3,
    seed: int = 0,
) -> list[Trial]:
    """Aging evolution with `budget` evaluations in all (the first `population_size` are random)."""
    _check_budget(budget)
    if not 1 <= sample_size <= population_size:
        raise ValueError(f"need 1 <= sample_size <= population_size, got {sample_size} and {population_size}")
    rng = random.Random(seed)
    population: deque[Trial] = deque()
    history: list[Trial] = []
    while len(history) < min(population_size, budget):
        t = Trial(a := space.sample(rng), evaluate(a))
        population.append(t)
        history.append(t)
    while len(history) < budget:
        sample = rng.sample(list(population), sample_size)
        parent = max(sample, key=lambda t: t.score)
        child = space.mutate(parent.arch, rng)
        t = Trial(child, evaluate(child))
        population.append(t)
        population.popleft()  # the oldest dies, whatever its score
        history.append(t)
    return history
