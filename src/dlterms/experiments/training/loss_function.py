"""Loss function: the loss decides which mistakes matter; squared error is pulled by outliers.

Data: 200 points y = 2x + 1 + N(0, 0.3^2), x uniform on [-3, 3]; then 10 % of them, the 20 with
the largest x, are corrupted to y - 15 (gross errors at high leverage, as a sensor failing at the top
of its range would give). A linear model is fitted by `fit` (full batch, Adam with a cosine decay,
800 steps) under MSE, MAE (L1) and Huber (delta = 1) losses. Squared error weighs a residual of 15
225 times more than a residual of 1, so the outliers drag its slope; L1 and Huber grow linearly and
barely move. Check (the spec): the MAE and Huber slope errors are each at least 3x smaller than
MSE's. Our losses are also checked against torch's on this data (values and gradients).

Thresholds: docs/experiments.md#loss-function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dlterms.losses import huber_loss, l1_loss, mse_loss
from dlterms.nn import Linear
from dlterms.optim import Adam, CosineAnnealingLR
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import fit

TRUE_SLOPE, TRUE_INTERCEPT = 2.0, 1.0


@dataclass(frozen=True)
class Config:
    """Parameters of the loss-function experiment; the defaults are the recorded run."""

    n: int = 200  # data points
    outlier_fraction: float = 0.10  # fraction of points (those with the largest x) made outliers
    outlier_shift: float = 15.0  # how far each outlier is pulled down
    noise: float = 0.3  # standard deviation of the clean points' noise
    steps: int = 800  # full-batch Adam steps per fit (cosine-annealed)
    lr: float = 0.05  # Adam step size

    def __post_init__(self) -> None:
        if self.n < 10:
            raise ValueError(f"n must be >= 10, got {self.n!r}")
        if not 0.0 < self.outlier_fraction < 0.5 or int(self.outlier_fraction * self.n) < 1:
            raise ValueError(
                f"outlier_fraction must be in (0, 0.5) and give >= 1 outlier, got {self.outlier_fraction!r}"
            )
        if self.noise < 0 or self.steps < 1 or not self.lr > 0:
            raise ValueError(f"noise must be >= 0, steps >= 1, lr > 0, got {self.noise!r}, {self.steps!r}, {self.lr!r}")


@experiment(
    "loss-function",
    config=Config,
    sweeps=(
        Sweep(
            "outlier_fraction",
            (0.05, 0.1, 0.2, 0.3),
            "How much better do MAE and Huber recover the slope than MSE as the share of outliers grows?",
            metric="slope_error_ratio_MSE_over_Huber",
        ),
    ),
)
def loss_function(run: Run, cfg: Config) -> None:
    rng = run.rng(1)
    n, frac = cfg.n, cfg.outlier_fraction
    x = rng.uniform(-3, 3, n)
    y = TRUE_SLOPE * x + TRUE_INTERCEPT + rng.normal(0, cfg.noise, n)
    out_idx = np.argsort(x)[-int(frac * n) :]  # the fraction with the largest x
    y[out_idx] -= cfg.outlier_shift
    xt = torch.tensor(x, dtype=torch.float32).unsqueeze(1).to(run.device)
    yt = torch.tensor(y, dtype=torch.float32).unsqueeze(1).to(run.device)

    # our losses against torch's on this data, values and gradients
    diffs = []
    for ours, ref in ((mse_loss, F.mse_loss), (l1_loss, F.l1_loss), (huber_loss, F.huber_loss)):
        pred = (2.5 * xt).requires_grad_(True)
        pred_ref = (2.5 * xt).requires_grad_(True)
        a, b = ours(pred, yt), ref(pred_ref, yt)
        a.backward()
        b.backward()
        diffs += [float((a - b).detach().abs()), float((pred.grad - pred_ref.grad).abs().max())]
    run.check_le("MSE, MAE and Huber equal torch's (values and gradients) on this data", max(diffs), 1e-6, strict=True)

    fits = {}
    steps = cfg.steps
    for name, loss_fn in (("MSE", mse_loss), ("MAE", l1_loss), ("Huber", huber_loss)):
        torch.manual_seed(run.seed)
        model = Linear(1, 1).to(run.device)
        opt = Adam(model.parameters(), lr=cfg.lr)
        h = fit(
            model,
            (xt, yt),
            loss_fn=loss_fn,
            optimizer=opt,
            epochs=steps,
            batch_size=None,
            seed=run.seed,
            scheduler=CosineAnnealingLR(opt, T_max=steps),
        )
        slope, intercept = model.weight.item(), model.bias.item()
        fits[name] = (slope, intercept)
        run.metric(f"slope_{name}", slope)
        run.metric(f"final_loss_{name}", h.train_loss[-1])
    ols_slope = float(np.polyfit(x.astype(np.float32), y.astype(np.float32), 1)[0])
    run.metric("least_squares_slope", ols_slope)
    run.check_le(
        "the MSE fit converged to the least-squares line (so its error is the loss's, not the optimiser's)",
        abs(fits["MSE"][0] - ols_slope),
        0.01,
        strict=True,
    )
    err = {k: abs(s - TRUE_SLOPE) for k, (s, _) in fits.items()}
    for k, v in err.items():
        run.metric(f"slope_error_{k}", v, key=(k == "MSE"))
    for k in ("MAE", "Huber"):
        ratio = err["MSE"] / max(err[k], 1e-12)
        run.metric(f"slope_error_ratio_MSE_over_{k}", ratio)
        run.check_ge(f"{k}'s slope error is at least 3x smaller than MSE's", ratio, 3.0)

    with run.figure(
        "fits",
        alt="scatter of the data with 20 outliers at the right end pulled down; the MSE "
        "line tilts toward them while the MAE and Huber lines follow the clean points",
    ) as fig:
        ax = fig.subplots()
        clean = np.setdiff1d(np.arange(n), out_idx)
        ax.scatter(x[clean], y[clean], s=8, color="grey", label="data")
        ax.scatter(x[out_idx], y[out_idx], s=12, color="red", marker="x", label="outliers (10 %)")
        grid = np.linspace(-3, 3, 2)
        ax.plot(grid, TRUE_SLOPE * grid + TRUE_INTERCEPT, "k:", label="true line")
        for i, (k, (s, b)) in enumerate(fits.items()):
            ax.plot(grid, s * grid + b, color=f"C{i}", label=f"{k}: slope {s:.2f}")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
