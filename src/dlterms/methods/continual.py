r"""Continual learning: elastic weight consolidation (EWC) and a replay memory.

EWC (Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks", PNAS 2017).
After task $A$ the weights $\theta^*_A$ are kept together with the diagonal of the Fisher
information, estimated from the model's own predictive distribution on task-$A$ inputs
(the "true" Fisher, not the empirical one):

$$F_i = \frac{1}{N}\sum_{n=1}^{N} \mathbb{E}_{y \sim p_\theta(y \mid x_n)}
        \Big[\Big(\frac{\partial \log p_\theta(y \mid x_n)}{\partial \theta_i}\Big)^2\Big]$$

and training on task $B$ minimises

$$L(\theta) = L_B(\theta) + \frac{\lambda}{2}\sum_i F_i\,(\theta_i - \theta^*_{A,i})^2$$

With several past tasks the penalties add up (one $(F, \theta^*)$ pair per task).

Replay (rehearsal): keep a small class-balanced memory of examples from every past task and mix
it into the training data of each new task.
"""

from __future__ import annotations

import torch
from torch import nn

from dlterms.nn.activations import log_softmax

__all__ = ["EWC", "fisher_diagonal", "ReplayMemory"]


def fisher_diagonal(model: nn.Module, x: torch.Tensor, batch_size: int = 1) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of a classifier (logits out) on inputs `x`, one example per backward pass.

    The expectation over y is computed exactly: sum_y p(y|x) (d log p(y|x) / d theta)^2.
    `batch_size` > 1 averages gradients over examples first (faster, a coarser estimate).
    """
    if len(x) == 0:
        raise ValueError("x must hold at least one example to estimate the Fisher information")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    F = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    n_batches = 0
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(dev)
        logp = log_softmax(model(xb), dim=-1)  # (B, K)
        probs = logp.detach().exp()
        for k in range(logp.size(1)):
            grads = torch.autograd.grad(logp[:, k].mean(), list(params.values()), retain_graph=True)
            w = probs[:, k].mean()  # p(y=k | x) (averaged over the batch when batch_size > 1)
            for (n, _), g in zip(params.items(), grads):
                F[n] += w * g.pow(2)
        n_batches += 1
    model.train(was_training)
    return {n: f / n_batches for n, f in F.items()}


class EWC:
    """Quadratic EWC penalty around the weights of every consolidated task.

    Args:
        model: the network being trained.
        lam: lambda, the penalty strength.
    """

    def __init__(self, model: nn.Module, lam: float):
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.model, self.lam = model, float(lam)
        self.tasks: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []  # (F, theta*)

    def consolidate(self, x: torch.Tensor, batch_size: int = 1) -> None:
        """Store F and theta* for the task just learned (inputs `x`)."""
        F = fisher_diagonal(self.model, x, batch_size)
        theta = {n: p.detach().clone() for n, p in self.model.named_parameters() if n in F}
        self.tasks.append((F, theta))

    def penalty(self) -> torch.Tensor:
        """lambda/2 sum_tasks sum_i F_i (theta_i - theta*_i)^2 (0 before any task is consolidated)."""
        params = dict(self.model.named_parameters())
        total = torch.zeros((), device=next(self.model.parameters()).device)
        for F, theta in self.tasks:
            for n, f in F.items():
                total = total + (f * (params[n] - theta[n]).pow(2)).sum()
        return 0.5 * self.lam * total

    def loss(self, loss_fn):
        """Wrap `loss_fn(out, y)` into `loss_fn(out, y) + penalty()` (for `dlterms.training.fit`)."""
        return lambda out, y: loss_fn(out, y) + self.penalty()


class ReplayMemory:
    """A class-balanced memory of `per_task` examples from each past task.

    Args:
        per_task: examples kept from each task (spread evenly over its classes).
        generator: seeds which examples are kept.
    """

    def __init__(self, per_task: int, generator: torch.Generator | None = None):
        if per_task < 1:
            raise ValueError(f"per_task must be >= 1, got {per_task}")
        self.per_task, self.generator = per_task, generator
        self.x: list[torch.Tensor] = []
        self.y: list[torch.Tensor] = []

    def add_task(self, x: torch.Tensor, y: torch.Tensor) -> None:
        classes = y.unique()
        per_class = max(1, self.per_task // len(classes))
        keep = []
        for c in classes:
            idx = torch.nonzero(y == c).flatten()
            keep.append(idx[torch.randperm(len(idx), generator=self.generator)[:per_class].to(idx.device)])
        keep = torch.cat(keep)[: self.per_task]
        self.x.append(x[keep])
        self.y.append(y[keep])

    def __len__(self) -> int:
        return sum(len(y) for y in self.y)

    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The new task's data with the memory appended."""
        if not self.y:
            return x, y
        return torch.cat([x, *self.x]), torch.cat([y, *self.y])
