"""Shared set-ups of the training experiments: the exploding deep ReLU network (exploding-gradient,
gradient-clipping), per-layer backpropagated gradient norms, and the regularised logistic regression
(gradient-descent, sgd)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer

from dlterms.data.datasets import make_split
from dlterms.losses import binary_cross_entropy_with_logits, cross_entropy
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


def exploding_mlp(
    cfg: ExplodingConfig, in_features: int, out_features: int, seed: int, scale: float | None = None
) -> MLP:
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


LOGISTIC_LAMBDA = 1e-2  # L2 penalty of the regularised logistic-regression problem


class LogisticProblem:
    """L2-regularised logistic regression on scikit-learn's breast-cancer set (75 % for training, 30
    standardised features, float64): a strictly convex objective with a finite minimiser, shared by
    the gradient-descent and SGD experiments.

    objective(w, b) = mean logistic loss + lambda/2 ||w||^2 (the bias is not penalised).
    """

    def __init__(self, seed: int, device: str, lam: float = LOGISTIC_LAMBDA):
        d = load_breast_cancer()
        split = make_split(d.data, d.target.astype(np.int64), test_size=0.25, seed=seed)
        x = split.x_train.double()
        self.x = ((x - x.mean(0)) / x.std(0)).to(device)
        self.y = split.y_train.double().to(device)
        self.n, self.p = self.x.shape
        self.lam = lam
        # The largest curvature the loss can have: the Hessian is X~^T S X~ / N + lambda I with
        # S = diag(s(1 - s)) <= 1/4, so L = lambda_max(X~^T X~ / N) / 4 + lambda.
        xb = torch.cat([self.x, torch.ones(self.n, 1, dtype=self.x.dtype, device=self.x.device)], 1)
        self.L = float(torch.linalg.eigvalsh(xb.T @ xb / self.n).max()) / 4 + lam

    def loss_fn(self, model):
        """The objective as `fit`'s loss(outputs, targets), for `model`'s weights."""

        def f(out, target):
            # mean logistic loss + lambda/2 ||w||^2
            penalty = self.lam / 2 * model.weight.pow(2).sum()
            return binary_cross_entropy_with_logits(out.squeeze(1), target) + penalty

        return f

    def objective(self, model) -> torch.Tensor:
        """The full-data objective at `model`'s weights."""
        return self.loss_fn(model)(model(self.x), self.y)

    def objective_path(self, weights: torch.Tensor) -> torch.Tensor:
        """The full-data objective at each of S weight vectors at once: `weights` (S, p + 1) holds w
        then b in each row (a linear model's parameters, flattened); returns (S,)."""
        w, b = weights[:, : self.p], weights[:, self.p :]  # (S, p), (S, 1)
        logits = w @ self.x.T + b  # (S, N)
        losses = binary_cross_entropy_with_logits(logits, self.y.expand_as(logits), reduction="none")
        return losses.mean(1) + self.lam / 2 * w.pow(2).sum(1)

    def new_model(self):
        """A linear model (float64) starting from zero weights."""
        m = Linear(self.p, 1, dtype=torch.float64).to(self.x.device)
        with torch.no_grad():
            m.weight.zero_()
            m.bias.zero_()
        return m
