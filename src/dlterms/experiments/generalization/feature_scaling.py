r"""Feature scaling: standardising the inputs of a least-squares problem shrinks the Hessian's condition
number by orders of magnitude, and gradient descent converges in >= 10x fewer steps.

Data: scikit-learn's wine measurements, predicting alcohol content from the other 12 (magnesium in
the hundreds, proline near a thousand, hue near one; 70/30 split, scalers fitted on the training part).
For the mean squared error of a linear model with an intercept, $L(w) = \frac{1}{n}\|Aw - y\|^2$ with
$A = [X, 1]$, the Hessian is constant, $H = \frac{2}{n} A^\top A$, and full-batch gradient descent with
step $1/\lambda_{max}(H)$ needs about $\kappa(H) = \lambda_{max}/\lambda_{min}$ times $\log(1/\epsilon)$
steps. Each variant runs `dlterms.optim.SGD` (full batch, no momentum, step $1/\lambda_{max}$ of its
own Hessian) until the loss is within $10^{-6}$ of the way from its start to the least-squares optimum,
or 5 000 steps (a lower bound for the raw inputs, which do not get there). the spec asks for
>= 10x fewer steps after scaling. Min-max scaling, also reported, helps less (kappa ~ 600).

Thresholds: docs/experiments.md#feature-scaling.
"""

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.scalers import MinMaxScaler, StandardScaler
from dlterms.losses import mse_loss
from dlterms.methods.regularization import ridge
from dlterms.nn import Linear
from dlterms.optim import SGD
from dlterms.run import Run, experiment
from dlterms.training import StopAtLoss, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the feature-scaling experiment; the defaults are the recorded run."""

    max_steps: int = 5_000  # gradient-descent steps at most (raw inputs, kappa ~ 1e8, would need ~ 1e9)
    tol: float = 1e-6  # relative sub-optimality (L - L*) / (L0 - L*) that counts as converged
    test_size: float = 0.3  # fraction of the wine samples held out (the scalers see only the rest)

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps!r}")
        if not 0 < self.tol < 1:
            raise ValueError(f"tol must be in (0, 1), got {self.tol!r}")
        if not 0.05 <= self.test_size <= 0.8:
            raise ValueError(f"test_size must be in [0.05, 0.8], got {self.test_size!r}")


def _hessian_stats(x: np.ndarray) -> tuple[float, float]:
    A = np.hstack([x, np.ones((len(x), 1))])  # (n, d + 1): features and the intercept column
    H = 2.0 * A.T @ A / len(A)  # (d + 1, d + 1)
    ev = np.linalg.eigvalsh(H)
    return float(ev[-1] / ev[0]), float(ev[-1])


def _gd_steps(
    x: np.ndarray, y: np.ndarray, lr: float, seed: int, device: str, cfg: Config
) -> tuple[int | None, list[float]]:
    w, b = ridge(x, y, alpha=0.0)  # least-squares optimum L*
    best = float(np.mean((x @ w + b - y) ** 2))
    start = float(np.mean(y**2))  # L0 at w = 0, b = 0
    xt, yt = torch.tensor(x, device=device), torch.tensor(y, device=device).unsqueeze(1)  # float64
    model = Linear(x.shape[1], 1, dtype=torch.float64).to(device)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    stop = StopAtLoss(best + cfg.tol * (start - best))
    h = fit(
        model,
        (xt, yt),
        loss_fn=mse_loss,
        optimizer=SGD(model.parameters(), lr=lr),
        epochs=cfg.max_steps,
        batch_size=None,
        seed=seed,
        callbacks=[stop],
    )
    return stop.reached, h.step_loss


@experiment("feature-scaling", config=Config)
def feature_scaling(run: Run, cfg: Config) -> None:
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    data = load_wine().data
    x, y = data[:, 1:], data[:, 0]  # 12 measurements -> alcohol
    x_tr, _, y_tr, _ = train_test_split(x, y, test_size=cfg.test_size, random_state=run.seed)
    variants = {
        "raw": x_tr,
        "standardised": StandardScaler().fit(x_tr).transform(x_tr),
        "min-max": MinMaxScaler().fit(x_tr).transform(x_tr),
    }
    steps, curves, kappas = {}, {}, {}
    for i, (name, xv) in enumerate(variants.items()):
        kappas[name], lam_max = _hessian_stats(xv)
        steps[name], curves[name] = _gd_steps(xv, y_tr, 1.0 / lam_max, run.seed, run.device, cfg)
        run.progress((i + 1) / len(variants), f"{name}: {steps[name]} steps")
        run.metric(f"condition_number_{name}", kappas[name])
        run.metric(f"gd_steps_{name}", steps[name] if steps[name] is not None else f"> {cfg.max_steps}")
    raw_steps = steps["raw"] if steps["raw"] is not None else cfg.max_steps  # a lower bound when not converged
    std_steps = steps["standardised"]
    ratio = raw_steps / std_steps if std_steps else 0.0
    run.metric("step_ratio_raw_over_standardised", ratio, key=True)
    run.check(
        "standardising cuts the Hessian's condition number >= 100x",
        kappas["raw"] >= 100 * kappas["standardised"],
        observed=f"{kappas['raw']:.3g} -> {kappas['standardised']:.3g}",
        expected=">= 100x smaller",
    )
    bound = ">" if steps["raw"] is None else ""
    run.check(
        "gradient descent converges in >= 10x fewer steps after standardising",
        std_steps is not None and ratio >= 10,
        observed=f"{bound}{raw_steps} -> {std_steps} ({bound}{ratio:.0f}x)",
        expected=">= 10x fewer",
    )

    with run.figure(
        "convergence",
        alt="mean squared error against gradient-descent steps: standardised and "
        "min-max scaled inputs converge in tens to about a thousand steps, raw inputs barely move "
        f"in {cfg.max_steps:,}".replace(",", " "),
    ) as fig:
        ax = fig.subplots()
        for name, c in curves.items():
            ax.plot(range(1, len(c) + 1), c, label=f"{name} (kappa {kappas[name]:.2g})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("gradient-descent step (full batch, lr = 1/lambda_max)")
        ax.set_ylabel("training MSE")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
