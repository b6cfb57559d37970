r"""Samplers that decide which training examples the model sees: random oversampling and curriculum pacing.

Both produce index tensors; `fit` then trains on `x[idx], y[idx]`. A sampler's stream of indices can be
turned into one long training set that `fit` walks through in order (`shuffle=False`), which is how a
curriculum, whose pool of allowed examples changes from step to step, runs through the one training loop.

**Random oversampling** (e.g. Japkowicz & Stephen, "The class imbalance problem", 2002) draws extra copies
of minority-class examples, with replacement, until every class has as many examples as the largest:
$n_k \to \max_j n_j$.

**Curriculum learning** (Bengio, Louradour, Collobert & Weston, "Curriculum Learning", ICML 2009): given a
difficulty score $d_i$ per example and a pacing function $\lambda(t)$, the batch at step $t$ is drawn
uniformly from the examples that are easy enough,

$$P_t = \{\, i : d_i \le \lambda(t) \,\}, \qquad \text{batch}_t \sim \mathrm{Uniform}(P_t)^{B},$$

and $\lambda$ grows until $P_t$ holds every example; a constant $\lambda = \infty$ is ordinary random order.
`step_pacing(start, increment, every)` is the staircase $\lambda(t) = \text{start} + \text{increment}\,
\lfloor t / \text{every} \rfloor$ (Zaremba & Sutskever, "Learning to Execute", 2014, raised the length and
nesting of programs in the same way).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

__all__ = ["RandomOversampler", "CurriculumSampler", "step_pacing"]


def _check_labels(y: torch.Tensor) -> None:
    if y.dim() != 1 or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"y must be a 1-D tensor of integer class labels, got {y.dtype} of shape {tuple(y.shape)}")


class RandomOversampler:
    """Indices that repeat each class's examples (with replacement) up to the largest class's count.

    Every original example is kept once; each smaller class is topped up with `max_j n_j - n_k` draws
    from its own examples. The result is shuffled. `seed` makes it reproducible.
    """

    def __init__(self, y: torch.Tensor, seed: int = 0):
        _check_labels(y)
        if len(y) == 0:
            raise ValueError("y is empty: nothing to oversample")
        self.y, self.seed = y.cpu(), seed

    def indices(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        classes, counts = torch.unique(self.y, return_counts=True)
        target = int(counts.max())  # max_j n_j
        parts = []
        for c, n_c in zip(classes.tolist(), counts.tolist(), strict=True):
            members = torch.nonzero(self.y == c).flatten()
            extra = members[torch.randint(len(members), (target - n_c,), generator=g)]  # with replacement
            parts += [members, extra]
        idx = torch.cat(parts)
        return idx[torch.randperm(len(idx), generator=g)]

    def __len__(self) -> int:
        return int(torch.unique(self.y, return_counts=True)[1].max()) * len(torch.unique(self.y))


def step_pacing(start: float, increment: float, every: int) -> Callable[[int], float]:
    """lambda(t) = start + increment * floor(t / every): the difficulty allowed at step t."""
    if every < 1:
        raise ValueError(f"every must be >= 1 step, got {every}")
    if increment < 0:
        raise ValueError(f"increment must be >= 0, got {increment}")

    def pacing(t: int) -> float:
        return start + increment * (t // every)

    return pacing


class CurriculumSampler:
    """Batches drawn uniformly from the examples whose difficulty is at most `pacing(step)`.

    Args:
        difficulty: one score per example (higher is harder), shape (n,).
        batch_size: examples per step (drawn with replacement from the allowed pool).
        pacing: step -> largest difficulty allowed; None means no curriculum (every example, random order).
        seed: seeds the draws.
    """

    def __init__(
        self, difficulty: torch.Tensor, batch_size: int, pacing: Callable[[int], float] | None = None, seed: int = 0
    ):
        difficulty = torch.as_tensor(difficulty)
        if difficulty.dim() != 1 or len(difficulty) == 0:
            raise ValueError(
                f"difficulty must be a non-empty 1-D tensor of scores, got shape {tuple(difficulty.shape)}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.difficulty = difficulty.cpu().to(torch.float64)
        self.batch_size, self.pacing, self.seed = batch_size, pacing, seed
        # examples sorted by difficulty, so the pool P_t is a prefix of this order
        self._order = torch.argsort(self.difficulty, stable=True)
        self._sorted = self.difficulty[self._order]

    def pool_size(self, step: int) -> int:
        """|P_t|: how many examples are allowed at `step`."""
        if self.pacing is None:
            return len(self._order)
        limit = self.pacing(step)
        if math.isnan(limit):
            raise ValueError(f"pacing({step}) returned NaN")
        return int(torch.searchsorted(self._sorted, torch.tensor(limit, dtype=torch.float64), right=True))

    def batches(self, num_steps: int) -> Iterator[torch.Tensor]:
        """`num_steps` index tensors of `batch_size`, step t drawn uniformly from P_t."""
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        g = torch.Generator().manual_seed(self.seed)
        for t in range(num_steps):
            m = self.pool_size(t)
            if m == 0:
                raise ValueError(
                    f"no example has difficulty <= pacing({t}) = {self.pacing(t)}; the easiest has "
                    f"{float(self._sorted[0])}"
                )
            yield self._order[torch.randint(m, (self.batch_size,), generator=g)]  # uniform over P_t

    def indices(self, num_steps: int) -> torch.Tensor:
        """All batches of `num_steps` steps concatenated: train on x[idx] in order with batch_size."""
        return torch.cat(list(self.batches(num_steps)))
