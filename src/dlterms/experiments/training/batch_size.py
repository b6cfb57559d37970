"""Batch size: the mini-batch gradient's variance falls as 1/B, and bigger batches mean fewer steps.

Model: an MLP (64-32-10, 2410 parameters, at initialisation) on scikit-learn's digits (N = 1347
training images). Every example's gradient is computed once (`torch.func.vmap` of `torch.func.grad`);
a mini-batch gradient is then the mean of the rows that `dlterms.training.batches` puts in one
batch (a seeded permutation cut into batches, as `fit` does), and its variance is
E||g_B - g||^2 around the full-data gradient g, over >= 400 batches per size for B = 1, 2, 4, ..., 512.
Theory: drawing B of N examples without replacement gives variance sigma^2/B * (N-B)/(N-1), i.e. a
log-log slope of -1 steepened slightly at the largest B by the finite-population factor (reported).
Check (the spec): the fitted log-log slope lies in [-1.2, -0.8]. One epoch of `fit` at each size
reports the steps per epoch (ceil(N/B)) and the seconds per epoch.

Thresholds: docs/experiments.md#batch-size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import SGD
from dlterms.run import Run, experiment
from dlterms.training import batches, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the batch-size experiment; the defaults are the recorded run."""

    sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # batch sizes B measured
    min_draws: int = 400  # mini-batches drawn (at least) per size for the variance
    hidden: int = 32  # hidden units of the 64-H-10 MLP
    lr: float = 0.01  # SGD step size of the one-epoch timing runs

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or min(self.sizes) < 1 or max(self.sizes) > 1000:
            raise ValueError(
                f"sizes must hold >= 2 batch sizes in [1, 1000] (1347 training images), got {self.sizes!r}"
            )
        if self.min_draws < 2 or self.hidden < 1 or self.lr <= 0:
            raise ValueError(
                f"min_draws must be >= 2, hidden >= 1, lr > 0, got {self.min_draws!r}, {self.hidden!r}, {self.lr!r}"
            )


def per_example_grads(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, P): row i is the flattened gradient of example i's loss."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, xi, yi):
        return cross_entropy(functional_call(model, p, (xi.unsqueeze(0),)), yi.unsqueeze(0))

    g = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[k].reshape(len(x), -1) for k in params], 1)


@experiment("batch-size", config=Config)
def batch_size(run: Run, cfg: Config) -> None:
    SIZES = list(cfg.sizes)
    split = digits(seed=run.seed).to(run.device)
    x, y = split.x_train, split.y_train
    n = len(y)
    torch.manual_seed(run.seed)
    model = MLP([64, cfg.hidden, 10]).to(run.device)
    G = per_example_grads(model, x, y)  # (N, P)
    g_full = G.mean(0)
    gen = run.generator(1)
    variances = []
    for b in SIZES:
        per_epoch = n // b  # full batches only, so every draw has exactly B examples
        epochs = math.ceil(cfg.min_draws / per_epoch)
        sq = []
        for _ in range(epochs):
            for idx in batches(n, b, gen, drop_last=True):
                sq.append(float(((G[idx.to(G.device)].mean(0) - g_full) ** 2).sum()))
        variances.append(float(np.mean(sq)))
    slope, intercept = np.polyfit(np.log(SIZES), np.log(variances), 1)
    sigma2 = variances[0]  # B = 1: the per-example variance
    theory = [sigma2 / b * (n - b) / (n - 1) for b in SIZES]
    theory_slope = float(np.polyfit(np.log(SIZES), np.log(theory), 1)[0])
    run.metric("variance_per_B", {str(b): v for b, v in zip(SIZES, variances)})
    run.metric("loglog_slope", float(slope), key=True)
    run.metric("theory_slope_without_replacement", theory_slope)
    rel = max(abs(v / t - 1) for v, t in zip(variances, theory))
    run.metric("max_rel_error_vs_sigma2_over_B_fpc", rel)
    run.check_le("and it matches sigma^2/B (N-B)/(N-1) within 10 % at every B", rel, 0.10, strict=True)
    run.check_between(
        f"variance of the mini-batch gradient falls as 1/B: log-log slope over B = {SIZES[0]}..{SIZES[-1]}",
        float(slope),
        -1.2,
        -0.8,
    )
    run.progress(0.5, "variances measured")

    steps, seconds = {}, {}
    for b in SIZES:
        torch.manual_seed(run.seed)
        m = MLP([64, cfg.hidden, 10]).to(run.device)
        h = fit(
            m,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=SGD(m.parameters(), lr=cfg.lr),
            epochs=1,
            batch_size=b,
            seed=run.seed,
        )
        steps[b], seconds[b] = h.steps, h.epoch_seconds[0]
    run.metric("steps_per_epoch", {str(b): s for b, s in steps.items()})
    run.metric("seconds_per_epoch", {str(b): s for b, s in seconds.items()})
    expected = {b: math.ceil(n / b) for b in SIZES}
    run.check(
        "steps per epoch = ceil(N / B) at every batch size",
        steps == expected,
        observed=list(steps.values()),
        expected=str(list(expected.values())),
    )

    with run.figure(
        "variance",
        alt="log-log plot of gradient variance against batch size: the points fall on a "
        "line of slope about -1, matching sigma^2/B; right, seconds per epoch fall with B as the "
        "number of steps falls",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        ax1.loglog(SIZES, variances, "o", label="measured E||g_B - g||^2")
        ax1.loglog(
            SIZES, np.exp(intercept) * np.array(SIZES, dtype=float) ** slope, "-", label=f"fit, slope {slope:.3f}"
        )
        ax1.loglog(SIZES, theory, "k:", label="sigma^2/B (N-B)/(N-1)")
        ax1.set_xlabel("batch size B")
        ax1.set_ylabel("gradient variance")
        ax1.legend(fontsize=7)
        ax1.grid(alpha=0.3, which="both")
        ax2.loglog(SIZES, [seconds[b] for b in SIZES], "o-", label="seconds per epoch")
        ax2.loglog(SIZES, [steps[b] for b in SIZES], "s--", label="steps per epoch")
        ax2.set_xlabel("batch size B")
        ax2.legend(fontsize=7)
        ax2.grid(alpha=0.3, which="both")
