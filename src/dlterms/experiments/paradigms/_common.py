"""Shared set-ups of the paradigms experiments."""

from __future__ import annotations

import time

import torch

from dlterms.data.datasets import Split, digits
from dlterms.training import Callback, accuracy


def permuted_digits(n_tasks: int, seed: int, test_size: float = 0.3) -> list[Split]:
    """Tasks made from scikit-learn's digits: task 0 is the original 8x8 images (flattened to 64),
    task t > 0 applies a fixed random permutation of the 64 pixels to every image (Goodfellow et al.
    2013; Kirkpatrick et al. 2017). Same labels, same split; only the input layout differs."""
    base = digits(test_size=test_size, seed=seed)
    g = torch.Generator().manual_seed(seed)
    tasks = [base]
    for _ in range(n_tasks - 1):
        perm = torch.randperm(64, generator=g)
        tasks.append(Split(base.x_train[:, perm], base.y_train, base.x_test[:, perm], base.y_test))
    return tasks


class TaskAccuracy(Callback):
    """Test accuracy on every task after every epoch."""

    def __init__(self, tasks: list[Split]):
        self.tasks = tasks
        self.curves: list[list[float]] = [[] for _ in tasks]

    def on_epoch_end(self, state) -> None:
        for curve, t in zip(self.curves, self.tasks):
            curve.append(accuracy(state.model, t.x_test, t.y_test))


def best_forward_seconds(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Fastest of `repeats` forward passes of `model` on `x` (no gradients), in seconds."""
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t)
    return best


def check_episodic_training(channels: tuple[int, ...], train_way: int, train_shot: int, train_query: int) -> None:
    """Validate the episodic-training fields the glyph-set experiments (few-shot, one-shot) share:
    ValueError naming the field and value. The glyph set has 192 training characters of 20 images."""
    if not channels or min(channels) < 1:
        raise ValueError(f"channels must be a non-empty tuple of widths >= 1, got {channels!r}")
    if not 2 <= train_way <= 192:
        raise ValueError(f"train_way must be in 2..192 (the training characters), got {train_way!r}")
    if train_shot < 1 or train_query < 1 or train_shot + train_query > 20:
        raise ValueError(
            "train_shot and train_query must be >= 1 with at most 20 images per character, got "
            f"{train_shot!r} and {train_query!r}"
        )
