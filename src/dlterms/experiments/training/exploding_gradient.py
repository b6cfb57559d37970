"""Exploding gradient: a deep ReLU network whose layers each amplify the signal by ~1.5.

Network: `dlterms.nn.MLP` 64 -> 64 x 23 -> 10 (24 weight layers, ReLU) on scikit-learn's digits, weights
He-normal times 1.5 and zero biases (`_common.exploding_mlp`). He initialisation alone keeps the
signal's size through a ReLU layer; the extra factor 1.5 is compounded layer after layer, forward and
backward. Measured: the norm of the backpropagated error signal dL/dz_l at the output of every layer,
over 5 initialisations; it must grow >= 1000x from the last layer to the first (the spec). Then SGD at
a fixed learning rate of 0.01 (batch 64) must diverge: the loss becomes non-finite (or rises >= 1000x).
The same network at weight scale 1.0 is the control: its error signal stays within 10x across depth and
the same learning rate trains it (finite, falling loss), so the weight scale is the cause.

Thresholds: docs/experiments.md#exploding-gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dlterms.data.datasets import digits
from dlterms.experiments.training._common import ExplodingConfig, exploding_mlp, preactivation_grad_norms
from dlterms.losses import cross_entropy
from dlterms.optim import SGD
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import fit


@dataclass(frozen=True)
class Config:
    """Parameters of the exploding-gradient experiment; the defaults are the recorded run."""

    depth: int = 24  # weight layers of the ReLU MLP
    width: int = 64  # hidden units per layer
    scale: float = 1.5  # weights = scale x He-normal: each layer multiplies the signal by about `scale`
    inits: int = 5  # random initialisations whose gradient growth is measured (seeds run.seed*100 + k)
    lr: float = 1e-2  # fixed SGD learning rate of the training runs
    epochs: int = 6  # training epochs
    batch_size: int = 64  # mini-batch size

    def __post_init__(self) -> None:
        if self.depth < 2 or self.width < 1 or self.inits < 1:
            raise ValueError(
                f"depth must be >= 2, width and inits >= 1, got {self.depth!r}, {self.width!r}, {self.inits!r}"
            )
        if not self.scale > 0 or not self.lr > 0:
            raise ValueError(f"scale and lr must be > 0, got {self.scale!r}, {self.lr!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs!r}, {self.batch_size!r}")


@experiment(
    "exploding-gradient",
    config=Config,
    sweeps=(
        Sweep(
            "scale",
            (1.0, 1.2, 1.5, 2.0),
            "How fast does the gradient grow across the layers as each layer's gain rises above 1, in shallower "
            "and deeper nets?",
            by="depth",
            by_values=(12, 24),
            metric="growth_min",
        ),
    ),
)
def exploding_gradient(run: Run, cfg: Config) -> None:
    ec = ExplodingConfig(
        depth=cfg.depth,
        width=cfg.width,
        scale=cfg.scale,
        lr=cfg.lr,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
    )
    SEEDS = cfg.inits
    split = digits(seed=run.seed).to(run.device)
    x, y = split.x_train, split.y_train
    norms = {}
    for scale in (ec.scale, 1.0):
        norms[scale] = [
            preactivation_grad_norms(
                exploding_mlp(ec, 64, 10, run.seed * 100 + s, scale).to(run.device), x[:512], y[:512]
            )
            for s in range(SEEDS)
        ]
    growth = [n[0] / n[-1] for n in norms[ec.scale]]
    control = [n[0] / n[-1] for n in norms[1.0]]
    run.metric(f"growth_first_over_last_scale_{ec.scale}", growth)
    run.metric("growth_first_over_last_scale_1.0", control)
    run.metric("growth_min", min(growth), key=True)
    run.check_ge(
        f"the backpropagated gradient grows >= 1000x across {ec.depth} layers (weight scale {ec.scale}, {SEEDS} inits)",
        min(growth),
        1000,
    )
    worst = max(max(c, 1 / c) for c in control)
    run.metric("control_worst_factor", worst)

    runs = {}
    for scale in (ec.scale, 1.0):
        model = exploding_mlp(ec, 64, 10, run.seed, scale).to(run.device)
        runs[scale] = fit(
            model,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=SGD(model.parameters(), lr=ec.lr),
            epochs=ec.epochs,
            batch_size=ec.batch_size,
            seed=run.seed,
        )
    h = runs[ec.scale]
    first = h.step_loss[0] if h.step_loss else math.nan
    blowup = max(h.step_loss) / first if h.step_loss else math.nan
    run.metric("sgd_stop_reason", h.stop_reason)
    run.metric("sgd_nonfinite_step", h.nonfinite_step)
    run.metric("sgd_initial_loss", first)
    diverged = h.diverged or blowup >= 1000
    run.check(
        f"SGD at a fixed lr = {ec.lr} diverges",
        diverged,
        observed=(f"non-finite loss at step {h.nonfinite_step}" if h.diverged else f"loss x{blowup:.3g}"),
        expected="non-finite, or rising >= 1000x",
    )
    c = runs[1.0]
    ok = (not c.diverged) and all(map(math.isfinite, c.train_loss)) and c.train_loss[-1] < c.train_loss[0]
    run.metric("control_train_loss_first_last", [c.train_loss[0], c.train_loss[-1]])
    run.check(
        "control (weight scale 1.0): gradient within 10x across depth and the same lr trains",
        ok and worst < 10,
        observed=f"factor {worst:.2f}; loss {c.train_loss[0]:.3f} -> {c.train_loss[-1]:.3f}",
        expected="< 10x; finite, falling",
    )

    with run.figure(
        "layer-norms",
        alt="norm of the backpropagated gradient per layer on a log scale: with weight "
        "scale 1.5 it rises about ten-thousand-fold from the output layer to the input layer; with "
        "scale 1.0 it stays flat",
    ) as fig:
        ax = fig.subplots()
        layers = np.arange(1, ec.depth + 1)
        for i, (scale, v) in enumerate(norms.items()):
            arr = np.array(v)
            ax.semilogy(layers, np.exp(np.log(arr).mean(0)), "o-", color=f"C{i}", label=f"weight scale {scale}")
            ax.fill_between(layers, arr.min(0), arr.max(0), color=f"C{i}", alpha=0.2)
        ax.set_xlabel("layer (1 = input side)")
        ax.set_ylabel("||dL/dz|| (geometric mean, range over 5 inits)")
        ax.legend()
        ax.grid(alpha=0.3)
