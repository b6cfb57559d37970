r"""Layers, a multilayer perceptron and plain gradient descent on the from-scratch `Tensor`.

Enough to build and train a small network with nothing but NumPy and `dlterms.autograd`:

$$h_\ell = \phi(h_{\ell-1} W_\ell^\top + b_\ell), \qquad
\theta \leftarrow \theta - \eta\, \frac{\partial L}{\partial \theta}$$

with PyTorch's default initialisation ($W, b \sim \mathcal{U}(\pm 1/\sqrt{n_{in}})$) and parameter
names (`weight` of shape (out, in), `bias` of shape (out,)), so weights copy to and from
`torch.nn.Linear` / `dlterms.nn.Linear` one to one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from dlterms.autograd.tensor import Tensor, no_grad

__all__ = ["Module", "Linear", "MLP", "SGD", "train"]

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda x: x,
    "relu": Tensor.relu,
    "tanh": Tensor.tanh,
    "sigmoid": Tensor.sigmoid,
    "gelu": Tensor.gelu,
    "leaky_relu": Tensor.leaky_relu,
}


class Module:
    """Holds named parameters (Tensors that require grad) and sub-modules."""

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield from item.named_parameters(f"{prefix}{name}.{i}.")

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError


class Linear(Module):
    r"""$y = x W^\top + b$; input (*, in_features) -> (*, out_features)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        dtype=np.float64,
    ):
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / math.sqrt(in_features)  # torch.nn.Linear's default range
        self.in_features, self.out_features = in_features, out_features
        self.weight = Tensor(
            rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype), requires_grad=True
        )  # (out, in)
        self.bias = (
            Tensor(rng.uniform(-bound, bound, out_features).astype(dtype), requires_grad=True) if bias else None
        )  # (out,)

    def forward(self, x: Tensor) -> Tensor:
        y = x @ self.weight.T  # (*, in) @ (in, out) -> (*, out)
        return y + self.bias if self.bias is not None else y


class MLP(Module):
    """Linear layers with `activation` between them (none after the last): sizes [in, hidden..., out]."""

    def __init__(
        self, sizes: list[int], activation: str = "relu", rng: np.random.Generator | None = None, dtype=np.float64
    ):
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least the input and output sizes, got {sizes!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        rng = rng if rng is not None else np.random.default_rng()
        self.sizes, self.activation = list(sizes), activation
        self.layers = [Linear(i, o, rng=rng, dtype=dtype) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]

    def forward(self, x: Tensor) -> Tensor:
        phi = _ACTIVATIONS[self.activation]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = phi(x)
        return x


class SGD:
    r"""Plain gradient descent: $\theta \leftarrow \theta - \eta\, g$."""

    def __init__(self, params: list[Tensor], lr: float):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.params, self.lr = list(params), lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        with no_grad():
            for p in self.params:
                if p.grad is not None:
                    p.data -= self.lr * p.grad  # theta <- theta - lr * dL/dtheta


def train(model: Module, loss_fn: Callable[[Tensor], Tensor], optimizer: SGD, steps: int) -> list[float]:
    """Full-batch training: `steps` times, loss = loss_fn(model), backward, step. Returns the losses.

    (`dlterms.training.fit` trains torch modules; this is its counterpart for our own Tensor.)
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
