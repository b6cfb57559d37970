"""Continual learning: naive fine-tuning, EWC and replay over three pixel-permuted digits tasks.

Task 1 is scikit-learn's digits; tasks 2 and 3 shuffle the 64 pixels with fixed permutations (same
labels, one shared 10-way head). The same MLP (64-100-10, Adam 1e-3, batches of 64, 20 epochs per task) learns
the tasks in order in three ways:

- naive: train on each new task only;
- EWC: add the penalty lambda/2 sum_i F_i (theta_i - theta*_i)^2 for every finished task
  (lambda = 100, diagonal Fisher from 200 training inputs of that task);
- replay: add a class-balanced memory of 100 training examples from each finished task to the
  new task's training set.

Claims (TERMS): after task 3, task 1's test accuracy under replay is far above naive fine-tuning,
and EWC is above naive. Test accuracy on every task is recorded after each epoch for the figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.experiments.paradigms._common import TaskAccuracy, permuted_digits
from dlterms.losses import cross_entropy
from dlterms.methods.continual import EWC, ReplayMemory
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the continual-learning experiment; the defaults are the recorded run."""

    n_tasks: int = 3  # tasks in the sequence
    hidden: int = 100  # hidden units
    epochs: int = 20  # epochs per task
    batch_size: int = 64  # examples per step
    lr: float = 1e-3  # Adam step size
    lam: float = 100.0  # EWC strength lambda
    fisher_samples: int = 200  # task inputs used to estimate the Fisher diagonal
    memory_per_task: int = 100  # replayed examples kept from each task

    def __post_init__(self) -> None:
        if self.n_tasks < 2:
            raise ValueError(f"n_tasks must be >= 2 (a sequence), got {self.n_tasks!r}")
        for name in ("hidden", "epochs", "batch_size", "fisher_samples", "memory_per_task"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0 or self.lam < 0:
            raise ValueError(f"lr must be > 0 and lam >= 0, got {self.lr!r} and {self.lam!r}")


def _learn(method: str, tasks, cfg: Config, seed: int, device: str):
    torch.manual_seed(seed)
    model = MLP([64, cfg.hidden, 10]).to(device)
    opt = Adam(model.parameters(), lr=cfg.lr)
    ewc = EWC(model, cfg.lam) if method == "EWC" else None
    memory = ReplayMemory(cfg.memory_per_task, torch.Generator().manual_seed(seed))
    tracker = TaskAccuracy(tasks)
    for k, t in enumerate(tasks):
        x, y = memory.mix(t.x_train, t.y_train) if method == "replay" else (t.x_train, t.y_train)
        fit(
            model,
            (x, y),
            loss_fn=ewc.loss(cross_entropy) if ewc else cross_entropy,
            optimizer=opt,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            seed=seed + k,
            callbacks=[tracker],
        )
        if ewc is not None:
            ewc.consolidate(t.x_train[: cfg.fisher_samples])
        memory.add_task(t.x_train, t.y_train)
    return [accuracy(model, t.x_test, t.y_test) for t in tasks], tracker.curves


@experiment(
    "continual-learning",
    config=Config,
    sweeps=(
        Sweep(
            "memory_per_task",
            (10, 30, 100),
            "How small can the replay memory be and still keep task 1?",
            metric="replay_task1_acc",
        ),
    ),
)
def continual_learning(run: Run, cfg: Config) -> None:
    tasks = [t.to(run.device) for t in permuted_digits(cfg.n_tasks, run.seed)]
    final, curves = {}, {}
    for i, method in enumerate(("naive", "EWC", "replay")):
        final[method], curves[method] = _learn(method, tasks, cfg, run.seed, run.device)
        run.progress((i + 1) / 3, method)
        run.metric(f"{method}_task1_acc", final[method][0], key=method == "replay")
        run.metric(f"{method}_mean_acc_all_tasks", sum(final[method]) / cfg.n_tasks)
        run.metric(f"{method}_acc_per_task", final[method])
    naive, ewc, replay = final["naive"][0], final["EWC"][0], final["replay"][0]
    run.check_ge("after task 3, replay keeps task-1 accuracy far above naive fine-tuning", replay - naive, 0.3)
    run.check_ge("replay keeps task 1 high in absolute terms", replay, 0.8)
    run.check_ge("after task 3, EWC keeps task-1 accuracy above naive fine-tuning", ewc - naive, 0.1)
    run.check_ge("replay still learns the newest task", final["replay"][-1], 0.9)

    with run.figure(
        "accuracy-per-task",
        alt="test accuracy of each of three permuted-digits tasks after every "
        "epoch, for naive fine-tuning, EWC and replay",
        figsize=(10, 3.6),
    ) as fig:
        axes = fig.subplots(1, 3, sharey=True)
        for ax, method in zip(axes, ("naive", "EWC", "replay")):
            for k, curve in enumerate(curves[method]):
                ax.plot(range(1, len(curve) + 1), curve, label=f"task {k + 1}")
            for k in range(1, cfg.n_tasks):
                ax.axvline(k * cfg.epochs + 0.5, ls="--", c="gray", lw=0.8)
            ax.set_title(method)
            ax.set_xlabel("epoch")
        axes[0].set_ylabel("test accuracy")
        axes[0].legend()
