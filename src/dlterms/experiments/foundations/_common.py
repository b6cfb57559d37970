"""Shared pieces of the foundations experiments: training a classifier with `fit`, and drawing a
2-D model's decision regions."""

from __future__ import annotations

import numpy as np
import torch

from dlterms.losses import cross_entropy
from dlterms.optim import Adam
from dlterms.training import History, accuracy, fit


def train_classifier(model: torch.nn.Module, split, *, lr: float, epochs: int, batch_size: int | None, seed: int,
                     device: str = "cpu", weight_decay: float = 0.0, val: bool = False) -> tuple[float, History]:
    """Adam + cross-entropy through `dlterms.training.fit`; returns (test accuracy, history)."""
    model.to(device)
    opt = Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    hist = fit(model, (split.x_train, split.y_train), loss_fn=cross_entropy, optimizer=opt, epochs=epochs,
               batch_size=batch_size, seed=seed, val=(split.x_test, split.y_test) if val else None)
    return accuracy(model, split.x_test, split.y_test), hist


@torch.no_grad()
def plot_decision_regions(ax, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, title: str,
                          steps: int = 150) -> None:
    """Shade where `model` predicts class 1 (2-D inputs, 2 classes) and scatter the points on top."""
    xs = x.cpu().numpy()
    lo, hi = xs.min(0) - 0.5, xs.max(0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], steps), np.linspace(lo[1], hi[1], steps))
    grid = torch.tensor(np.c_[gx.ravel(), gy.ravel()], dtype=torch.float32)
    dev = next(model.parameters()).device
    model.eval()
    p1 = torch.softmax(model(grid.to(dev)), dim=-1)[:, 1].cpu().numpy().reshape(gx.shape)
    shade = ax.contourf(gx, gy, p1, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35)
    shade.set_rasterized(True)  # a small embedded image instead of thousands of SVG paths
    ax.contour(gx, gy, p1, levels=[0.5], colors="k", linewidths=1.2)
    ys = y.cpu().numpy()
    ax.scatter(xs[ys == 0, 0], xs[ys == 0, 1], s=8, c="tab:blue", label="class 0")
    ax.scatter(xs[ys == 1, 0], xs[ys == 1, 1], s=8, c="tab:red", label="class 1")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
