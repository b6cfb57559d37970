"""Shared set-ups of the training experiments: the exploding deep ReLU network (exploding-gradient,
gradient-clipping) and per-layer backpropagated gradient norms."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.losses import cross_entropy
from dlterms.nn import MLP, Linear, init


@dataclass
class ExplodingConfig:
    depth: int = 24  # weight layers
    width: int = 64  # hidden units per layer
    scale: float = 1.5  # weights = scale x He-normal: each layer multiplies the signal by about `scale`
    lr: float = 1e-2  # fixed SGD learning rate
    epochs: int = 6
    batch_size: int = 64
    max_norm: float = 1.0  # clipping threshold (global L2 norm)


def exploding_mlp(cfg: ExplodingConfig, in_features: int, out_features: int, seed: int,
                  scale: float | None = None) -> MLP:
    """A deep ReLU MLP whose weights are He-normal times `scale` (> 1 makes the gradient explode), zero biases."""
    torch.manual_seed(seed)
    model = MLP([in_features] + [cfg.width] * (cfg.depth - 1) + [out_features], activation="relu")
    with torch.no_grad():
        for layer in model.linear_layers:
            init.kaiming_normal_(layer.weight, nonlinearity="relu")
            layer.weight.mul_(cfg.scale if scale is None else scale)
            init.zeros_(layer.bias)
    return model


def preactivation_grad_norms(model: torch.nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """||dL/dz_l|| for the output z_l of every Linear layer, input side first: the error signal that
    backpropagation carries down through the layers."""
    zs, h = [], x
    for module in model:
        h = module(h)
        if isinstance(module, Linear):
            zs.append(h)
    loss = cross_entropy(h, y)
    grads = torch.autograd.grad(loss, zs)
    return [float(g.norm()) for g in grads]
