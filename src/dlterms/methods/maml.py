r"""Meta-learning an initialisation: MAML (second-order) and Reptile, on batches of tasks at once.

MAML (Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
ICML 2017). For each task $\mathcal{T}_i$ with support and query sets, the inner loop takes $k$
gradient steps from the shared initialisation $\theta$ (one step shown; it is repeated $k$ times),

$$\theta'_i = \theta - \alpha\,\nabla_\theta L^{\text{support}}_{\mathcal{T}_i}(\theta)$$

and the outer loop moves $\theta$ to lower the loss *after* adaptation,

$$\theta \leftarrow \theta - \beta\,\nabla_\theta \frac{1}{T}\sum_i L^{\text{query}}_{\mathcal{T}_i}(\theta'_i)$$

which differentiates through the inner gradient step: second derivatives, obtained with
`torch.autograd.grad(..., create_graph=True)` (`first_order=True` drops them: FOMAML).

Reptile (Nichol, Achiam & Schulman, "On First-Order Meta-Learning Algorithms", 2018) needs no
second derivatives: adapt with $k$ SGD steps to $\tilde\theta_i$, then move the initialisation
toward the adapted weights, $\theta \leftarrow \theta + \epsilon\,\frac{1}{T}\sum_i(\tilde\theta_i - \theta)$.

All tasks of a meta-batch are computed together: `TaskMLP` holds one copy of the weights per task
along a leading task dimension T, so the per-task inner gradients come from one backward pass
(each task's loss depends only on its own copy). Shapes: inputs (T, N, in), weights (T, in, out).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TaskMLP", "SinusoidTasks", "inner_adapt", "maml_loss", "maml_train", "reptile_step"]


class TaskMLP(nn.Module):
    """An MLP whose forward takes explicit (possibly per-task) parameters.

    Args:
        sizes: [in, hidden..., out].
    """

    def __init__(self, sizes: list[int]):
        super().__init__()
        if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"sizes must be >= 2 positive integers, got {sizes!r}")
        self.sizes = list(sizes)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(a)  # torch.nn.Linear's default initialisation range
            self.weights.append(nn.Parameter(torch.empty(a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(b).uniform_(-bound, bound)))

    def params(self, n_tasks: int) -> list[torch.Tensor]:
        """theta broadcast to T task copies (views, so gradients flow back to the shared theta)."""
        return [p.unsqueeze(0).expand(n_tasks, *p.shape) for p in [*self.weights, *self.biases]]

    def forward(self, x: torch.Tensor, params: list[torch.Tensor] | None = None) -> torch.Tensor:
        """x: (T, N, in) with params from `params(T)` (or adapted), or (N, in) with the shared theta."""
        if params is None:
            h = x
            for i, (W, b) in enumerate(zip(self.weights, self.biases)):
                h = h @ W + b
                if i < len(self.weights) - 1:
                    h = torch.relu(h)
            return h
        n = len(self.weights)
        h = x
        for i in range(n):
            h = torch.baddbmm(params[n + i].unsqueeze(1), h, params[i])  # (T, N, out) = b + h W
            if i < n - 1:
                h = torch.relu(h)
        return h

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}"


def _task_losses(model: TaskMLP, params, x, y) -> torch.Tensor:
    return (model(x, params) - y).pow(2).mean(dim=(1, 2))  # (T,) mean squared error per task


def inner_adapt(
    model: TaskMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    steps: int,
    create_graph: bool = False,
    params: list[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """theta'_i after `steps` SGD steps on each task's (x_i, y_i); x, y: (T, N, d).

    With `create_graph=True` the result stays differentiable with respect to theta (MAML).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    params = model.params(len(x)) if params is None else params
    if not create_graph:
        params = [p.detach().requires_grad_(True) for p in params]
    for _ in range(steps):
        loss = _task_losses(model, params, x, y).sum()  # sum over tasks: each copy gets its own task's grad
        grads = torch.autograd.grad(loss, params, create_graph=create_graph)
        # theta' = theta - alpha grad L_support(theta)
        params = [p - lr * g for p, g in zip(params, grads)]
        if not create_graph:
            params = [p.detach().requires_grad_(True) for p in params]
    return params


def maml_loss(
    model: TaskMLP,
    support: tuple[torch.Tensor, torch.Tensor],
    query: tuple[torch.Tensor, torch.Tensor],
    inner_lr: float,
    inner_steps: int = 1,
    first_order: bool = False,
) -> torch.Tensor:
    """(1/T) sum_i L_query_i(theta'_i): backpropagate it and step an optimizer on `model` (the outer loop)."""
    params = model.params(len(support[0]))
    for _ in range(inner_steps):
        loss = _task_losses(model, params, *support).sum()
        grads = torch.autograd.grad(loss, params, create_graph=not first_order)
        params = [p - inner_lr * g for p, g in zip(params, grads)]
    return _task_losses(model, params, *query).mean()


def maml_train(
    model: TaskMLP,
    tasks: SinusoidTasks,
    iterations: int,
    meta_batch: int,
    k_shot: int,
    inner_lr: float,
    meta_lr: float = 1e-3,
    inner_steps: int = 1,
    first_order: bool = False,
    device: str | torch.device | None = None,
    progress=None,
) -> list[float]:
    """MAML's outer loop. Each iteration draws `meta_batch` tasks of 2 * `k_shot` points, adapts a copy
    of the weights per task on the first `k_shot` (the support set), and takes one Adam step (`meta_lr`)
    on the mean loss of the adapted copies on the other `k_shot` (the query set), differentiating
    through the adaptation (`maml_loss`). `progress(fraction)` is called every 500 iterations.
    Returns the query loss of every iteration."""
    from dlterms.optim import Adam

    for name, value in (("iterations", iterations), ("meta_batch", meta_batch), ("k_shot", k_shot)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    opt = Adam(model.parameters(), lr=meta_lr)
    losses: list[float] = []
    for it in range(iterations):
        x, y, _, _ = tasks.sample(meta_batch, 2 * k_shot)
        if device is not None:
            x, y = x.to(device), y.to(device)
        loss = maml_loss(
            model, (x[:, :k_shot], y[:, :k_shot]), (x[:, k_shot:], y[:, k_shot:]), inner_lr, inner_steps, first_order
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress is not None and it % 500 == 0:
            progress(it / iterations)
    return losses


@torch.no_grad()
def reptile_step(
    model: TaskMLP, x: torch.Tensor, y: torch.Tensor, inner_lr: float, inner_steps: int, outer_lr: float
) -> None:
    """theta <- theta + epsilon * mean_i(theta~_i - theta), theta~_i from `inner_steps` SGD steps."""
    if not 0 < outer_lr <= 1:
        raise ValueError(f"outer_lr must be in (0, 1], got {outer_lr}")
    with torch.enable_grad():
        adapted = inner_adapt(model, x, y, inner_lr, inner_steps)
    for p, a in zip([*model.weights, *model.biases], adapted):
        p.add_(outer_lr * (a.mean(0) - p))


class SinusoidTasks:
    """Finn et al.'s regression tasks: y = A sin(x - phi), A ~ U[0.1, 5], phi ~ U[0, pi], x ~ U[-5, 5]."""

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator

    def sample(self, n_tasks: int, n_points: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, y, amplitude, phase) with x, y of shape (T, n_points, 1)."""
        g = self.generator
        amp = torch.rand(n_tasks, 1, 1, generator=g) * 4.9 + 0.1
        phase = torch.rand(n_tasks, 1, 1, generator=g) * math.pi
        x = torch.rand(n_tasks, n_points, 1, generator=g) * 10 - 5
        return x, amp * torch.sin(x - phase), amp, phase
