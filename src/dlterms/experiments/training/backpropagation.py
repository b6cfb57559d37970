"""Backpropagation: the reverse-mode autodiff of `dlterms.autograd.Tensor` checked and put to work.

1. Gradient checks on 6 random MLPs (float64; 1-3 hidden layers of 3-8 units; tanh, sigmoid or GELU,
   which are smooth, so finite differences are accurate everywhere; cross-entropy on a random batch of
   8). Each parameter's gradient from `loss.backward()` is compared with central finite differences,
   $(L(\\theta + h) - L(\\theta - h)) / 2h$ with $h = 10^{-5}$ (relative error < 1e-6, the spec), and
   with torch.autograd on the same weights (< 1e-8). Relative error = ||a - b|| / max(||a||, ||b||).
   ReLU networks are compared with torch as well (finite differences are unreliable at ReLU's kink).
2. Training: a 2-layer tanh network (1-32-1) is fitted to y = sin(3x) on [-1, 1] (128 points) by full-batch
   gradient descent with our own `SGD` and `backward()`, no torch anywhere: the mean squared error must
   fall by >= 90 % (the spec).

Thresholds: docs/experiments.md#backpropagation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms import autograd as ag
from dlterms.autograd import Tensor
from dlterms.run import Run, experiment

TORCH_ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": torch.nn.functional.gelu, "relu": torch.relu}


FD_TOL, TORCH_TOL = 1e-6, 1e-8  # relative-error thresholds against finite differences and torch


@dataclass(frozen=True)
class Config:
    """Parameters of the backpropagation experiment; the defaults are the recorded run."""

    n_nets: int = 6  # random smooth MLPs checked against finite differences
    n_relu_nets: int = 3  # random ReLU MLPs checked against torch only
    batch: int = 8  # examples in each gradient check's batch
    n_classes: int = 3  # classes of the random cross-entropy targets
    h: float = 1e-5  # finite-difference step (truncation ~h^2, rounding ~1e-16/h: both ~1e-10)
    n_points: int = 128  # regression points for the training run
    hidden: int = 32  # hidden units of the trained 1-H-1 tanh network
    lr: float = 0.1  # full-batch gradient-descent step size
    steps: int = 1000  # gradient-descent steps

    def __post_init__(self) -> None:
        if self.n_nets < 1 or self.n_relu_nets < 0:
            raise ValueError(f"n_nets must be >= 1 and n_relu_nets >= 0, got {self.n_nets!r}, {self.n_relu_nets!r}")
        if not 0 < self.h < 1e-2:
            raise ValueError(f"h must be in (0, 1e-2), got {self.h!r}")
        if min(self.batch, self.n_points, self.hidden, self.steps) < 1 or self.n_classes < 2 or self.lr <= 0:
            raise ValueError("batch, n_points, hidden, steps must be >= 1, n_classes >= 2 and lr > 0")


def torch_gradients(net: ag.MLP, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """The same network and loss in torch (float64, same weights): (loss, gradients)."""
    params = [torch.tensor(p.data, requires_grad=True) for p in net.parameters()]
    h = torch.tensor(x)
    phi = TORCH_ACT[net.activation]
    for i in range(0, len(params), 2):
        h = h @ params[i].T + params[i + 1]  # (B, in) @ (in, out) + (out,)
        if i < len(params) - 2:
            h = phi(h)
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    grads = torch.autograd.grad(loss, params)
    return loss.item(), [g.numpy() for g in grads]


@experiment("backpropagation", config=Config)
def backpropagation(run: Run, cfg: Config) -> None:
    rng = run.rng(0)

    # 1. Gradient checks.
    fd_errors, torch_errors, rows = [], [], []
    smooth = ["tanh", "sigmoid", "gelu"]
    for k in range(cfg.n_nets + cfg.n_relu_nets):
        act = smooth[k % 3] if k < cfg.n_nets else "relu"
        depth = int(rng.integers(1, 4))
        sizes = [int(rng.integers(3, 9))] + [int(rng.integers(3, 9)) for _ in range(depth)] + [cfg.n_classes]
        net = ag.MLP(sizes, activation=act, rng=rng)
        x = rng.standard_normal((cfg.batch, sizes[0]))
        y = rng.integers(0, cfg.n_classes, cfg.batch)

        def loss_fn(net=net, x=x, y=y):
            return net(Tensor(x)).cross_entropy(y)

        net.zero_grad()
        loss = loss_fn()
        loss.backward()
        ours = [p.grad.copy() for p in net.parameters()]
        loss_t, grads_t = torch_gradients(net, x, y)
        err_t = max(ag.relative_error(a, b) for a, b in zip(ours, grads_t, strict=True))
        err_t = max(err_t, abs(loss.item() - loss_t) / abs(loss_t))
        torch_errors.append(err_t)
        err_fd = float("nan")
        if act != "relu":
            numeric = ag.numerical_gradient(loss_fn, net.parameters(), h=cfg.h)
            err_fd = max(ag.relative_error(a, b) for a, b in zip(ours, numeric, strict=True))
            fd_errors.append(err_fd)
        rows.append((sizes, act, err_fd, err_t))
        run.progress(0.5 * (k + 1) / (cfg.n_nets + cfg.n_relu_nets), f"net {k + 1} checked")

    run.metric("max_rel_error_vs_finite_differences", max(fd_errors), key=True)
    run.metric("max_rel_error_vs_torch_autograd", max(torch_errors))
    run.metric("nets", [f"{'-'.join(map(str, s))} {a}" for s, a, _, _ in rows])
    run.metric(
        "parameters_checked",
        sum(sum(int(np.prod(p)) for p in zip(s[:-1], s[1:], strict=True)) + sum(s[1:]) for s, _, _, _ in rows),
    )
    run.check_le(
        f"backward() matches central finite differences on {cfg.n_nets} random smooth MLPs (float64)",
        max(fd_errors),
        FD_TOL,
        strict=True,
    )
    run.check_le(
        f"backward() matches torch.autograd on {len(rows)} random MLPs (incl. ReLU)",
        max(torch_errors),
        TORCH_TOL,
        strict=True,
    )

    # 2. Train a 2-layer network with our autograd alone.
    x = np.linspace(-1, 1, cfg.n_points)[:, None]  # (N, 1)
    target = np.sin(3 * x)
    net = ag.MLP([1, cfg.hidden, 1], activation="tanh", rng=run.rng(1))
    before = net(Tensor(x)).data.copy()
    losses = ag.train(net, lambda m: m(Tensor(x)).mse_loss(target), ag.SGD(net.parameters(), lr=cfg.lr), cfg.steps)
    after = net(Tensor(x)).data
    final = float(np.mean((after - target) ** 2))
    cut = 1 - final / losses[0]
    run.metric("initial_mse", losses[0])
    run.metric("final_mse", final)
    run.metric("loss_reduction", cut)
    run.check_ge("a 2-layer net trained with our backward() and SGD cuts its loss by >= 90 %", cut, 0.90)

    with run.figure(
        "gradient-checks-and-training",
        alt="left: relative gradient error of each random MLP against "
        "finite differences and torch, on a log scale, far below the thresholds; right: loss per step "
        "and the fitted sine",
        figsize=(12, 3.8),
    ) as fig:
        ax1, ax2, ax3 = fig.subplots(1, 3)
        idx = np.arange(len(rows))
        fd = np.array([r[2] for r in rows])
        tt = np.maximum(np.array([r[3] for r in rows]), 1e-18)
        ax1.scatter(idx[~np.isnan(fd)], fd[~np.isnan(fd)], label="vs finite differences", color="tab:blue")
        ax1.scatter(idx, tt, marker="s", label="vs torch.autograd (0 shown at 1e-18)", color="tab:orange")
        ax1.axhline(FD_TOL, color="tab:blue", ls="--", lw=1)
        ax1.axhline(TORCH_TOL, color="tab:orange", ls="--", lw=1)
        ax1.set_yscale("log")
        ax1.set_xticks(idx, [f"{r[1]}\n{'-'.join(map(str, r[0]))}" for r in rows], fontsize=6)
        ax1.set_ylabel("relative error")
        ax1.set_title("gradient checks (dashed: thresholds)", fontsize=10)
        ax1.legend(fontsize=7)
        ax2.semilogy(losses, color="tab:green")
        ax2.set_xlabel("gradient-descent step")
        ax2.set_ylabel("MSE")
        ax2.set_title(f"training with our autograd: -{cut:.1%}", fontsize=10)
        ax3.plot(x, target, color="k", lw=1, label="sin(3x)")
        ax3.plot(x, before, color="grey", ls=":", label="before training")
        ax3.plot(x, after, color="tab:green", label="after training")
        ax3.set_xlabel("x")
        ax3.legend(fontsize=8)
