r"""Parameter-norm regularisation: L2 and L1 penalties, decoupled weight decay, ridge and lasso.

A penalty added to the training loss $L(\theta)$ trades fit for smaller (L2) or sparser (L1) weights
(Tikhonov 1943; Hoerl & Kennard, "Ridge regression", 1970; Tibshirani, "Regression shrinkage and
selection via the lasso", 1996):

$$L_2:\; L(\theta) + \lambda \sum_j \theta_j^2, \qquad L_1:\; L(\theta) + \lambda \sum_j |\theta_j|$$

**Decoupled weight decay** (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019)
shrinks the weights directly after the optimiser's step instead of adding $\lambda\theta$ to the
gradient; for plain SGD the two are the same, for adaptive optimisers (Adam) they are not:

$$\theta \leftarrow \theta - \eta\,\lambda\,\theta$$

**Ridge** and **lasso** regression solve the penalised least-squares problems with scikit-learn's
scaling of the objective (so coefficients can be compared with `sklearn.linear_model.Ridge` and
`Lasso`). With an intercept, $X$ and $y$ are centred first and the intercept is not penalised:

$$\text{ridge:}\; \min_w \|y - Xw\|_2^2 + \alpha \|w\|_2^2 \;\Rightarrow\;
  w = (X^\top X + \alpha I)^{-1} X^\top y$$

$$\text{lasso:}\; \min_w \frac{1}{2n}\|y - Xw\|_2^2 + \alpha \|w\|_1$$

The lasso has no closed form; cyclic coordinate descent minimises it one coefficient at a time with
the soft-threshold operator $S(z, \gamma) = \mathrm{sign}(z)\max(|z| - \gamma, 0)$. With the residual
$r = y - Xw$ and column $x_j$:

$$w_j \leftarrow \frac{S\big(\tfrac{1}{n} x_j^\top (r + x_j w_j),\ \alpha\big)}{\tfrac{1}{n} x_j^\top x_j}$$

Shapes: $X$ is (n, d) (examples first), $y$ is (n,) or (n, k); coefficients are (d,) or (k, d) as in
scikit-learn's `coef_`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from dlterms.training import Callback, TrainState

__all__ = [
    "l2_penalty",
    "l1_penalty",
    "decoupled_weight_decay_",
    "DecoupledWeightDecay",
    "ridge",
    "lasso",
    "soft_threshold",
    "weight_parameters",
]


def weight_parameters(model: torch.nn.Module) -> list[torch.Tensor]:
    """The parameters usually penalised: every parameter named `weight` (biases and norm shifts excluded,
    and 1-D scales of normalisation layers excluded)."""
    return [p for name, p in model.named_parameters() if name.endswith("weight") and p.dim() > 1]


def _params(params: torch.nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return weight_parameters(params) if isinstance(params, torch.nn.Module) else list(params)


def l2_penalty(params: torch.nn.Module | Iterable[torch.Tensor], weight_decay: float) -> torch.Tensor:
    r"""$\lambda \sum_j \theta_j^2$ over `params` (a module means its weight matrices), to add to a loss."""
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    ps = _params(params)
    if not ps:
        raise ValueError("l2_penalty got no parameters to penalise")
    return weight_decay * sum((p**2).sum() for p in ps)


def l1_penalty(params: torch.nn.Module | Iterable[torch.Tensor], weight_decay: float) -> torch.Tensor:
    r"""$\lambda \sum_j |\theta_j|$ over `params` (a module means its weight matrices), to add to a loss."""
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    ps = _params(params)
    if not ps:
        raise ValueError("l1_penalty got no parameters to penalise")
    return weight_decay * sum(p.abs().sum() for p in ps)


@torch.no_grad()
def decoupled_weight_decay_(params: torch.nn.Module | Iterable[torch.Tensor], lr: float, weight_decay: float) -> None:
    r"""Shrink `params` in place, $\theta \leftarrow (1 - \eta\lambda)\,\theta$."""
    if lr < 0:
        raise ValueError(f"lr must be >= 0, got {lr}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    for p in _params(params):
        p.mul_(1.0 - lr * weight_decay)


class DecoupledWeightDecay(Callback):
    """`fit` callback applying decoupled weight decay at every step, with the learning rate of the
    optimiser's first parameter group (so schedules are followed).

    The shrink happens after the backward pass and before `optimizer.step()` (the gradient was taken at
    the unshrunk weights), the order `torch.optim.AdamW` uses, so Adam plus this callback on every
    parameter is AdamW. `all_parameters=False` (default) shrinks only weight matrices."""

    def __init__(self, weight_decay: float, all_parameters: bool = False):
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.weight_decay, self.all_parameters = weight_decay, all_parameters

    def after_backward(self, state: TrainState) -> None:
        lr = state.optimizer.param_groups[0]["lr"]
        params = state.model.parameters() if self.all_parameters else state.model
        decoupled_weight_decay_(params, lr, self.weight_decay)


# --------------------------------------------------------------------------- ridge and lasso


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have {X.shape[0]} rows like X, got shape {y.shape}")
    return X, y


def _center(X: np.ndarray, y: np.ndarray, fit_intercept: bool):
    if not fit_intercept:
        return X, y, np.zeros(X.shape[1]), np.zeros(y.shape[1:])
    x_mean, y_mean = X.mean(axis=0), y.mean(axis=0)
    return X - x_mean, y - y_mean, x_mean, y_mean


def ridge(X, y, alpha: float = 1.0, fit_intercept: bool = True) -> tuple[np.ndarray, np.ndarray | float]:
    """Closed-form ridge regression: (coef, intercept) minimising ||y - Xw - b||^2 + alpha ||w||^2."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    X, y = _check_xy(X, y)
    Xc, yc, x_mean, y_mean = _center(X, y, fit_intercept)
    d = X.shape[1]
    # w = (X^T X + alpha I)^{-1} X^T y, solved rather than inverted
    A = Xc.T @ Xc + alpha * np.eye(d)  # (d, d)
    w = np.linalg.solve(A, Xc.T @ yc)  # (d,) or (d, k)
    # b = y_mean - x_mean . w  (the unpenalised intercept of the centred problem)
    b = y_mean - x_mean @ w
    coef = w.T  # scikit-learn's layout: (d,) or (k, d)
    return coef, (float(b) if np.ndim(b) == 0 else b)


def soft_threshold(z: np.ndarray | float, gamma: float) -> np.ndarray | float:
    """S(z, gamma) = sign(z) max(|z| - gamma, 0): the proximal step of the L1 norm."""
    return np.sign(z) * np.maximum(np.abs(z) - gamma, 0.0)


def lasso(
    X, y, alpha: float = 1.0, fit_intercept: bool = True, max_iter: int = 10_000, tol: float = 1e-10
) -> tuple[np.ndarray, float]:
    """Lasso by cyclic coordinate descent: (coef, intercept) minimising
    (1/2n) ||y - Xw - b||^2 + alpha ||w||_1. Stops when no coefficient moves more than `tol` in a sweep."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    X, y = _check_xy(X, y)
    if y.ndim != 1:
        raise ValueError(f"lasso takes one target column, got y of shape {y.shape}")
    Xc, yc, x_mean, y_mean = _center(X, y, fit_intercept)
    n, d = Xc.shape
    w = np.zeros(d)
    r = yc.copy()  # residual y - Xw
    col_sq = (Xc**2).sum(axis=0) / n  # (1/n) x_j^T x_j
    for _ in range(max_iter):
        max_step = 0.0
        for j in range(d):
            if col_sq[j] == 0.0:
                continue  # a constant column never enters the model
            w_old = w[j]
            # rho = (1/n) x_j^T (r + x_j w_j): the correlation with the partial residual
            rho = Xc[:, j] @ r / n + col_sq[j] * w_old
            # w_j <- S(rho, alpha) / ((1/n) x_j^T x_j)
            w[j] = soft_threshold(rho, alpha) / col_sq[j]
            if w[j] != w_old:
                r -= Xc[:, j] * (w[j] - w_old)
                max_step = max(max_step, abs(w[j] - w_old))
        if max_step <= tol:
            break
    b = float(y_mean - x_mean @ w)
    return w, b
