r"""Bias: a boundary that does not pass through the origin needs one.

Two classes are split by the line $x_1 + x_2 = 6$, which passes 4.2 units from the origin: 2000
points drawn from $\mathcal{N}((3, 3), I)$, labelled by which side of the line they fall on (so a
linear unit with a bias can be almost perfect). A linear classifier $z = Wx + b$
(`dlterms.nn.Linear(2, 2)`, softmax cross-entropy) is trained with and without its bias. Without it,
every boundary $(w_1 - w_0)^\top x = 0$ passes through the origin, and no line through the origin
splits this cloud along the true boundary: accuracy <= 0.75 (the spec); with the bias >= 0.97.

Thresholds: docs/experiments.md#bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import make_split
from dlterms.experiments.foundations._common import plot_decision_regions, train_classifier
from dlterms.nn import Linear
from dlterms.params import Sweep
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the bias experiment; the defaults are the recorded run."""

    n: int = 2000  # points (70 % train, 30 % test)
    center: float = 3.0  # the cloud's centre is (center, center); the boundary x1 + x2 = 2 * center
    epochs: int = 100  # training epochs of each classifier
    batch_size: int = 100  # minibatch size
    lr: float = 0.05  # Adam step size

    def __post_init__(self) -> None:
        if self.n < 20:
            raise ValueError(f"n must be >= 20, got {self.n!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs!r} and {self.batch_size!r}")


@experiment(
    "bias",
    config=Config,
    sweeps=(
        Sweep(
            "center",
            (0.0, 0.5, 1.0, 2.0, 3.0),
            "How much does leaving out the bias cost as the class boundary moves away from the origin?",
            metric="test_acc_without_bias",
        ),
    ),
)
def bias(run: Run, cfg: Config) -> None:
    rng = run.rng(0)
    x = rng.normal(cfg.center, 1.0, (cfg.n, 2))
    y = (x.sum(1) > 2 * cfg.center).astype(np.int64)
    data = make_split(x.astype(np.float32), y, test_size=0.3, seed=run.seed).to(run.device)
    distance = 2 * cfg.center / np.sqrt(2)  # from the origin to the line x1 + x2 = 2c

    models, accs = {}, {}
    for use_bias in (False, True):
        torch.manual_seed(run.seed)
        models[use_bias] = Linear(2, 2, bias=use_bias)
        accs[use_bias], _ = train_classifier(
            models[use_bias],
            data,
            lr=cfg.lr,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            seed=run.seed,
            device=run.device,
        )
    # Where the learned boundary (logit difference = 0) passes, relative to the origin.
    with torch.no_grad():
        m = models[True]
        dw = (m.weight[1] - m.weight[0]).cpu()
        db = (m.bias[1] - m.bias[0]).item()
        learned_distance = abs(db) / dw.norm().item()

    run.metric("test_acc_without_bias", accs[False])
    run.metric("test_acc_with_bias", accs[True], key=True)
    run.metric("true_boundary_distance_from_origin", float(distance))
    run.metric("learned_boundary_distance_from_origin", learned_distance)
    run.check_le("without a bias (boundary forced through the origin) the classifier fails", accs[False], 0.75)
    run.check_ge("with a bias the same linear classifier separates the classes", accs[True], 0.97)
    run.check(
        "the learned bias moves the boundary off the origin to the true line's distance",
        abs(learned_distance - distance) < 0.2,
        observed=learned_distance,
        expected=f"{distance:.3f} +- 0.2",
    )

    with run.figure(
        "with-and-without-bias",
        alt="decision regions of a linear classifier without bias (boundary "
        "through the origin, marked) and with bias (boundary on the class border)",
        figsize=(9, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        for ax, use_bias in ((ax1, False), (ax2, True)):
            label = "with bias" if use_bias else "without bias"
            plot_decision_regions(
                ax, models[use_bias], data.x_test, data.y_test, f"{label}: {accs[use_bias]:.1%}", include_origin=True
            )
            ax.plot([0], [0], marker="+", color="k", ms=12, mew=2)
            ax.annotate("origin", (0, 0), textcoords="offset points", xytext=(6, -12), fontsize=8)
