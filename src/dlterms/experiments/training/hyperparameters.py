"""Hyperparameters: random search over learning rate and width beats the default configuration.

Model: a two-hidden-layer MLP (40-w-w-10) trained with Adam for 8 epochs (batch 128) on MNIST-1D.
The 4000 training signals are split 3200 / 800 into training and validation sets; the 1000 test
signals are used only at the end. Default configuration: Adam's default learning rate 1e-3 and width
64. Random search (`dlterms.tuning.random_search`, seeded) draws 8 configurations: learning rate
log-uniform in [1e-4, 3e-2], width log-uniform integer in [16, 256], each scored by validation
accuracy. Checks (the spec): the best configuration beats the default on validation, and the chosen
configuration also beats the default on the test set (which played no part in choosing it).

Thresholds: docs/experiments.md#hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import mnist1d, train_val_split
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit
from dlterms.tuning import IntUniform, LogUniform, random_search


@dataclass(frozen=True)
class Config:
    """Parameters of the hyperparameters experiment; the defaults are the recorded run."""

    n_trials: int = 8  # random-search trials
    epochs: int = 8  # training epochs of every trial
    default_lr: float = 1e-3  # the default configuration's Adam step size
    default_width: int = 64  # the default configuration's hidden width (two hidden layers)
    lr_range: tuple[float, ...] = (1e-4, 3e-2)  # log-uniform search range of the learning rate
    width_range: tuple[int, ...] = (16, 256)  # log-uniform integer search range of the width
    batch_size: int = 128  # mini-batch size

    def __post_init__(self) -> None:
        if self.n_trials < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"n_trials, epochs, batch_size must be >= 1, got "
                f"{self.n_trials!r}, {self.epochs!r}, {self.batch_size!r}"
            )
        if len(self.lr_range) != 2 or not 0 < self.lr_range[0] < self.lr_range[1]:
            raise ValueError(f"lr_range must be (low, high) with 0 < low < high, got {self.lr_range!r}")
        if len(self.width_range) != 2 or not 1 <= self.width_range[0] < self.width_range[1]:
            raise ValueError(f"width_range must be (low, high) with 1 <= low < high, got {self.width_range!r}")
        if not self.default_lr > 0 or self.default_width < 1:
            raise ValueError(
                f"default_lr must be > 0 and default_width >= 1, got {self.default_lr!r}, {self.default_width!r}"
            )


@experiment("hyperparameters", config=Config)
def hyperparameters(run: Run, cfg: Config) -> None:
    DEFAULT = {"lr": cfg.default_lr, "width": cfg.default_width}
    SPACE = {"lr": LogUniform(*cfg.lr_range), "width": IntUniform(*cfg.width_range, log=True)}
    N_TRIALS, EPOCHS = cfg.n_trials, cfg.epochs
    split = mnist1d()
    xtr, ytr, xva, yva = train_val_split(split.x_train, split.y_train, val_fraction=0.2, seed=run.seed)
    xtr, ytr, xva, yva = (t.to(run.device) for t in (xtr, ytr, xva, yva))
    xte, yte = split.x_test.to(run.device), split.y_test.to(run.device)
    models = {}

    def train(config: dict) -> float:
        torch.manual_seed(run.seed)
        model = MLP([40, config["width"], config["width"], 10]).to(run.device)
        fit(
            model,
            (xtr, ytr),
            loss_fn=cross_entropy,
            optimizer=Adam(model.parameters(), lr=config["lr"]),
            epochs=EPOCHS,
            batch_size=cfg.batch_size,
            seed=run.seed,
        )
        models[(config["lr"], config["width"])] = model
        run.progress(len(models) / (N_TRIALS + 1), f"trial {len(models)}")
        return accuracy(model, xva, yva)

    default_val = train(DEFAULT)
    result = random_search(train, SPACE, n_trials=N_TRIALS, seed=run.seed)
    best = result.best
    best_model = models[(best.config["lr"], best.config["width"])]
    default_model = models[(DEFAULT["lr"], DEFAULT["width"])]
    test_best, test_default = accuracy(best_model, xte, yte), accuracy(default_model, xte, yte)
    run.metric(
        "trials",
        [{"lr": t.config["lr"], "width": t.config["width"], "val_acc": t.score} for t in result.trials],
    )
    run.metric("chosen_config", {"lr": best.config["lr"], "width": best.config["width"]})
    run.metric("val_acc_chosen_vs_default", [best.score, default_val])
    run.metric("test_acc_chosen_vs_default", [test_best, test_default], key=True)
    run.check(
        "random search finds a configuration that beats the default on validation",
        best.score > default_val,
        observed=f"{best.score:.4f} vs {default_val:.4f}",
        expected="chosen > default",
    )
    run.check(
        "the chosen configuration also wins on the untouched test set",
        test_best > test_default,
        observed=f"{test_best:.4f} vs {test_default:.4f}",
        expected="chosen > default",
    )

    with run.figure(
        "search",
        alt="the sampled configurations as points in learning rate (log) and width (log), "
        "coloured by validation accuracy; the default and the chosen configuration are marked",
    ) as fig:
        ax = fig.subplots()
        lrs = np.array([t.config["lr"] for t in result.trials])
        widths = np.array([t.config["width"] for t in result.trials])
        scores = np.array([t.score for t in result.trials])
        sc = ax.scatter(lrs, widths, c=scores, cmap="viridis", s=60, edgecolors="k")
        ax.scatter(
            [DEFAULT["lr"]],
            [DEFAULT["width"]],
            marker="s",
            s=90,
            facecolors="none",
            edgecolors="r",
            label=f"default (val {default_val:.3f})",
        )
        ax.scatter(
            [best.config["lr"]],
            [best.config["width"]],
            marker="*",
            s=250,
            facecolors="none",
            edgecolors="r",
            label=f"chosen (val {best.score:.3f}, test {test_best:.3f})",
        )
        fig.colorbar(sc, ax=ax, label="validation accuracy")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("hidden width")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
