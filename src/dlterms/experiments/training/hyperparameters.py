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

import numpy as np
import torch

from dlterms.data.datasets import mnist1d, train_val_split
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit
from dlterms.tuning import IntUniform, LogUniform, random_search

DEFAULT = {"lr": 1e-3, "width": 64}
SPACE = {"lr": LogUniform(1e-4, 3e-2), "width": IntUniform(16, 256, log=True)}
N_TRIALS, EPOCHS = 8, 8


@experiment("hyperparameters")
def hyperparameters(run: Run) -> None:
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
            batch_size=128,
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
        [
            {"lr": float(f"{t.config['lr']:.3g}"), "width": t.config["width"], "val_acc": round(t.score, 4)}
            for t in result.trials
        ],
    )
    run.metric("chosen_config", {"lr": float(f"{best.config['lr']:.3g}"), "width": best.config["width"]})
    run.metric("val_acc_chosen_vs_default", [round(best.score, 4), round(default_val, 4)])
    run.metric("test_acc_chosen_vs_default", [round(test_best, 4), round(test_default, 4)], key=True)
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
