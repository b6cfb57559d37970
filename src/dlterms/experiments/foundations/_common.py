"""Shared pieces of the foundations experiments: training a classifier with `fit`, and drawing a
2-D model's decision regions."""

from __future__ import annotations

import numpy as np
import torch

from dlterms.losses import cross_entropy
from dlterms.nn import MLP, BatchNorm1d, Conv1d, Linear, MaxPool1d, ReLU, softmax
from dlterms.optim import Adam, CosineAnnealingLR
from dlterms.training import History, accuracy, fit


def train_classifier(
    model: torch.nn.Module,
    split,
    *,
    lr: float,
    epochs: int,
    batch_size: int | None,
    seed: int,
    device: str = "cpu",
    weight_decay: float = 0.0,
    val: bool = False,
    cosine: bool = False,
) -> tuple[float, History]:
    """Adam + cross-entropy through `dlterms.training.fit`; returns (test accuracy, history).

    `cosine=True` anneals the step size from `lr` to 0 over the epochs; `val=True` records the test
    accuracy after every epoch (for curves only: nothing is selected on it)."""
    model.to(device)
    opt = Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = CosineAnnealingLR(opt, T_max=epochs) if cosine else None
    hist = fit(
        model,
        (split.x_train, split.y_train),
        loss_fn=cross_entropy,
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        val=(split.x_test, split.y_test) if val else None,
        scheduler=sched,
    )
    return accuracy(model, split.x_test, split.y_test), hist


@torch.no_grad()
def plot_decision_regions(
    ax,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    title: str,
    steps: int = 150,
    include_origin: bool = False,
    point_size: float = 8,
) -> None:
    """Shade where `model` predicts class 1 (2-D inputs, 2 classes) and scatter the points on top."""
    xs = x.cpu().numpy()
    lo, hi = xs.min(0) - 0.5, xs.max(0) + 0.5
    if include_origin:
        lo, hi = np.minimum(lo, -1.0), np.maximum(hi, 1.0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    grid = torch.tensor(np.c_[gx.ravel(), gy.ravel()], dtype=torch.float32)
    dev = next(model.parameters()).device
    model.eval()
    p1 = softmax(model(grid.to(dev)), dim=-1)[:, 1].cpu().numpy().reshape(gx.shape)
    shade = ax.contourf(gx, gy, p1, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
    shade.set_rasterized(True)  # a small embedded image instead of thousands of SVG paths
    ax.contour(gx, gy, p1, levels=[0.5], colors="k", linewidths=1.2)
    ys = y.cpu().numpy()
    ax.scatter(xs[ys == 0, 0], xs[ys == 0, 1], s=point_size, c="tab:blue", label="class 0")
    ax.scatter(xs[ys == 1, 0], xs[ys == 1, 1], s=point_size, c="tab:red", label="class 1")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")


def mnist1d_mlp(dropout: float = 0.2) -> MLP:
    """The MLP our MNIST-1D experiments train: 40-256-256-256-256-10, ReLU, dropout on hidden units."""
    return MLP([40, 256, 256, 256, 256, 10], activation="relu", dropout=dropout)


def mnist1d_cnn_bn(channels: tuple[int, int, int] = (16, 32, 32), n_classes: int = 10) -> torch.nn.Sequential:
    """Three Conv1d -> BatchNorm1d -> ReLU -> MaxPool1d(2) blocks (lengths 40 -> 20 -> 10 -> 5) and a Linear
    head on the flattened (C, 5) map, all from `dlterms.nn`; input (B, 1, 40)."""
    layers: list[torch.nn.Module] = []
    c_in = 1
    for c_out, k in zip(channels, (5, 3, 3), strict=True):
        layers += [Conv1d(c_in, c_out, k, padding=k // 2), BatchNorm1d(c_out), ReLU(), MaxPool1d(2)]
        c_in = c_out
    layers += [torch.nn.Flatten(), Linear(channels[-1] * 5, n_classes)]  # (B, C, 5) -> (B, 5C) -> (B, 10)
    return torch.nn.Sequential(*layers)
