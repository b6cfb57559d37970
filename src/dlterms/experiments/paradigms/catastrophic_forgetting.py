"""Catastrophic forgetting: train on task A, then on task B only, and watch A's test accuracy.

Two settings on scikit-learn's digits, with the same MLP (64-100-10, Adam 1e-3, 20 epochs per task):

- split digits (class-incremental): A = digits 0-4, B = digits 5-9, one shared 10-way output. The
  tasks conflict over the outputs, and A's accuracy collapses: the claim (>= 95 % before, <= 50 %
  after) is checked here.
- permuted digits (domain-incremental): B is A with its 64 pixels shuffled by a fixed permutation,
  same labels. Forgetting is real but milder, because B reuses the output layer in the same way;
  reported, with a check only that it is a drop.

Accuracy on both tasks is measured after every epoch for the figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import Split, digits
from dlterms.experiments.paradigms._common import TaskAccuracy, permuted_digits
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the catastrophic-forgetting experiment; the defaults are the recorded run."""

    hidden: int = 100  # hidden units
    epochs: int = 20  # epochs per task
    lr: float = 1e-3  # Adam step size
    batch_size: int = 32  # examples per step

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"hidden, epochs and batch_size must be >= 1, got {self.hidden!r}, {self.epochs!r}, {self.batch_size!r}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


def _split(s: Split, classes: range) -> Split:
    tr = (s.y_train >= classes.start) & (s.y_train < classes.stop)
    te = (s.y_test >= classes.start) & (s.y_test < classes.stop)
    return Split(s.x_train[tr], s.y_train[tr], s.x_test[te], s.y_test[te])


def _sequence(tasks: list[Split], cfg: Config, seed: int, device: str) -> tuple[list[list[float]], list[float]]:
    """Train on each task in turn; returns the per-epoch curves and A's accuracy after each task."""
    torch.manual_seed(seed)
    model = MLP([64, cfg.hidden, 10]).to(device)
    opt = Adam(model.parameters(), lr=cfg.lr)
    tracker = TaskAccuracy(tasks)
    after = []
    for k, t in enumerate(tasks):
        fit(
            model,
            (t.x_train, t.y_train),
            loss_fn=cross_entropy,
            optimizer=opt,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            seed=seed + k,
            callbacks=[tracker],
        )
        after.append(accuracy(model, tasks[0].x_test, tasks[0].y_test))
    return tracker.curves, after


@experiment(
    "catastrophic-forgetting",
    config=Config,
    sweeps=(
        Sweep(
            "epochs",
            (1, 2, 5, 20),
            "How many epochs on task B does it take to wipe out task A?",
            metric="split_A_acc_after_B",
        ),
    ),
)
def catastrophic_forgetting(run: Run, cfg: Config) -> None:
    base = digits(test_size=0.3, seed=run.seed).to(run.device)
    split = [_split(base, range(0, 5)), _split(base, range(5, 10))]
    curves_s, (a_before, a_after) = _sequence(split, cfg, run.seed, run.device)
    run.progress(0.5, "split digits done")
    perm = [t.to(run.device) for t in permuted_digits(2, run.seed)]
    curves_p, (p_before, p_after) = _sequence(perm, cfg, run.seed, run.device)
    b_split, b_perm = curves_s[1][-1], curves_p[1][-1]

    run.metric("split_A_acc_before", a_before)
    run.metric("split_A_acc_after_B", a_after, key=True)
    run.metric("split_B_acc", b_split)
    run.metric("permuted_A_acc_before", p_before)
    run.metric("permuted_A_acc_after_B", p_after)
    run.metric("permuted_B_acc", b_perm)
    run.check_ge("split digits: task A is learned (test accuracy before B)", a_before, 0.95)
    run.check_le("split digits: after training on B, A's accuracy collapses", a_after, 0.5)
    run.check_ge("split digits: B itself is learned", b_split, 0.95)
    run.check(
        "permuted digits: A is learned, then drops by >= 10 points after B (milder forgetting)",
        p_before >= 0.95 and p_before - p_after >= 0.10,
        observed=f"{p_before:.3f} -> {p_after:.3f}",
        expected=">= 0.95, then a drop >= 0.10",
    )

    with run.figure(
        "curves",
        alt="test accuracy of task A and task B after every epoch, training on A then B; "
        "left split digits, right permuted digits",
        figsize=(9, 3.8),
    ) as fig:
        axes = fig.subplots(1, 2, sharey=True)
        for ax, curves, title in (
            (axes[0], curves_s, "split digits (A: 0-4, B: 5-9)"),
            (axes[1], curves_p, "permuted digits (B: pixels shuffled)"),
        ):
            epochs = range(1, len(curves[0]) + 1)
            ax.plot(epochs, curves[0], label="task A")
            ax.plot(epochs, curves[1], label="task B")
            ax.axvline(cfg.epochs + 0.5, ls="--", c="gray")
            ax.set_title(title)
            ax.set_xlabel("epoch (training on A, then on B)")
        axes[0].set_ylabel("test accuracy")
        axes[0].legend()
