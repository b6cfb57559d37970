"""Artificial neural network: a small ANN (two hidden ReLU layers of 32 units, composed from
`dlterms.nn.Linear` and `dlterms.nn.ReLU`) against logistic regression (one linear layer) on
scikit-learn's two moons (1000 points, noise 0.1, 30 % held out).

The moons are interleaved half-circles: no straight line separates them, so a linear model tops out
near 88 %; composing layers with a nonlinearity bends the boundary around them. Thresholds from
TERMS.md: ANN test accuracy >= 0.97, logistic regression <= 0.90.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import moons
from dlterms.experiments.foundations._common import plot_decision_regions, train_classifier
from dlterms.nn import MLP
from dlterms.run import Run, experiment


@dataclass
class Config:
    n: int = 1000  # points in the two moons
    noise: float = 0.1  # std of the Gaussian noise added to each point
    hidden: tuple[int, ...] = (32, 32)  # the ANN's hidden layer widths
    epochs: int = 60  # passes over the 700 training points
    batch_size: int = 64
    lr_ann: float = 0.01  # Adam step size for the ANN
    lr_linear: float = 0.05  # Adam step size for logistic regression


@experiment("ann")
def ann(run: Run) -> None:
    cfg = Config()
    data = moons(n=cfg.n, noise=cfg.noise, seed=run.seed).to(run.device)

    torch.manual_seed(run.seed)
    net = MLP([2, *cfg.hidden, 2], activation="relu")
    acc_ann, _ = train_classifier(
        net, data, lr=cfg.lr_ann, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=run.seed, device=run.device
    )
    run.progress(0.5, "ANN trained")
    logistic = MLP([2, 2])  # one linear layer + softmax cross-entropy = logistic regression
    acc_lin, _ = train_classifier(
        logistic, data, lr=cfg.lr_linear, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=run.seed, device=run.device
    )
    run.progress(1.0, "logistic regression trained")

    n_params = sum(p.numel() for p in net.parameters())
    run.metric("test_acc_ann", round(acc_ann, 4), key=True)
    run.metric("test_acc_logistic", round(acc_lin, 4))
    run.metric("ann_parameters", n_params)
    run.check(
        "a 2-32-32-2 ReLU ANN separates the two moons", acc_ann >= 0.97, observed=round(acc_ann, 4), expected=">= 0.97"
    )
    run.check(
        "logistic regression (a linear boundary) cannot",
        acc_lin <= 0.90,
        observed=round(acc_lin, 4),
        expected="<= 0.90",
    )

    with run.figure(
        "boundaries",
        alt="decision regions on the moons test set: a straight line for logistic "
        "regression, a curve that follows the moons for the ANN",
        figsize=(9, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        plot_decision_regions(ax1, logistic, data.x_test, data.y_test, f"logistic regression: {acc_lin:.1%}")
        plot_decision_regions(ax2, net, data.x_test, data.y_test, f"ANN 2-32-32-2 (ReLU): {acc_ann:.1%}")
        ax2.legend(loc="lower left", fontsize=8)
