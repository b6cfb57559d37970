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

import numpy as np
import torch
import torch.nn.functional as F

from dlterms.losses import huber_loss, l1_loss, mse_loss
from dlterms.nn import Linear
from dlterms.optim import Adam, CosineAnnealingLR
from dlterms.run import Run, experiment
from dlterms.training import fit

TRUE_SLOPE, TRUE_INTERCEPT = 2.0, 1.0


@experiment("loss-function")
def loss_function(run: Run) -> None:
    rng = run.rng(1)
    n, frac = 200, 0.10
    x = rng.uniform(-3, 3, n)
    y = TRUE_SLOPE * x + TRUE_INTERCEPT + rng.normal(0, 0.3, n)
    out_idx = np.argsort(x)[-int(frac * n) :]  # the 10 % with the largest x
    y[out_idx] -= 15.0
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
    run.check(
        "MSE, MAE and Huber equal torch's (values and gradients) on this data",
        max(diffs) < 1e-6,
        observed=f"{max(diffs):.2e}",
        expected="< 1e-6",
    )

    fits = {}
    steps = 800
    for name, loss_fn in (("MSE", mse_loss), ("MAE", l1_loss), ("Huber", huber_loss)):
        torch.manual_seed(run.seed)
        model = Linear(1, 1).to(run.device)
        opt = Adam(model.parameters(), lr=0.05)
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
        run.metric(f"slope_{name}", round(slope, 4))
        run.metric(f"final_loss_{name}", round(h.train_loss[-1], 4))
    ols_slope = float(np.polyfit(x.astype(np.float32), y.astype(np.float32), 1)[0])
    run.metric("least_squares_slope", round(ols_slope, 4))
    run.check(
        "the MSE fit converged to the least-squares line (so its error is the loss's, not the optimiser's)",
        abs(fits["MSE"][0] - ols_slope) < 0.01,
        observed=f"{fits['MSE'][0]:.4f} vs {ols_slope:.4f}",
        expected="within 0.01",
    )
    err = {k: abs(s - TRUE_SLOPE) for k, (s, _) in fits.items()}
    for k, v in err.items():
        run.metric(f"slope_error_{k}", round(v, 4), key=(k == "MSE"))
    for k in ("MAE", "Huber"):
        ratio = err["MSE"] / max(err[k], 1e-12)
        run.metric(f"slope_error_ratio_MSE_over_{k}", round(ratio, 2))
        run.check(
            f"{k}'s slope error is at least 3x smaller than MSE's",
            ratio >= 3.0,
            observed=f"{err[k]:.4f} vs {err['MSE']:.4f} (x{ratio:.1f})",
            expected=">= 3x smaller",
        )

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
