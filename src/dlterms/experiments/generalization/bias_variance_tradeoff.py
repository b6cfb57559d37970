r"""Bias-variance tradeoff: polynomial fits of growing degree, refitted on 200 resampled training sets.

A known function $f(x) = \sin(2.5x) + 0.5\cos(4x)$ on $[-1, 1]$, observed at 20 evenly spaced points
with Gaussian noise $\sigma = 0.3$. Each of $R = 200$ training sets redraws the noise; for every degree
$d = 0..15$ a least-squares polynomial (Legendre basis, `dlterms.methods.regularization.ridge` with a
negligible $\alpha$ = 1e-8 for numerical safety) is fitted to each set and evaluated on 200 grid points.
With $\bar f(x) = \frac{1}{R}\sum_r \hat f_r(x)$:

$$\text{bias}^2 = \mathrm{mean}_x (\bar f(x) - f(x))^2, \quad
  \text{variance} = \mathrm{mean}_x \frac{1}{R}\sum_r (\hat f_r(x) - \bar f(x))^2, \quad
  \text{expected error} = \text{bias}^2 + \text{variance} + \sigma^2$$

Checks (the spec: bias^2 falls, variance rises, test error U-shaped): bias^2 falls up to the best degree
(Spearman rank correlation with degree <= -0.9) and stays below 1 % of the constant model's beyond it
(where it is ~0 and its estimate only noise: $(\bar f - f)^2$ overestimates it by variance / R, which
is subtracted); variance rises (Spearman >= 0.9 over all degrees); the error's minimum lies at an
interior degree and both ends are >= 2x that minimum. The decomposition is also checked against a
direct measurement: the mean squared error of every fit on fresh noisy test labels must agree with
bias^2 + variance + sigma^2 to within 5 %.

Thresholds: docs/experiments.md#bias-variance-tradeoff.
"""

from dataclasses import dataclass

import numpy as np
from numpy.polynomial.legendre import legvander
from scipy.stats import spearmanr

from dlterms.methods.regularization import ridge
from dlterms.params import Sweep
from dlterms.run import Run, experiment

X_GRID = np.linspace(-1, 1, 200)


@dataclass(frozen=True)
class Config:
    """Parameters of the bias-variance-tradeoff experiment; the defaults are the recorded run."""

    n_train: int = 20  # evenly spaced training points on [-1, 1]
    n_sets: int = 200  # resampled training sets (the noise redrawn) the fits are averaged over
    sigma: float = 0.3  # std of the Gaussian label noise
    max_degree: int = 15  # polynomial degrees 0..max_degree are fitted

    def __post_init__(self) -> None:
        if self.n_train < 3:
            raise ValueError(f"n_train must be >= 3, got {self.n_train!r}")
        if self.n_sets < 2:
            raise ValueError(f"n_sets must be >= 2, got {self.n_sets!r}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma!r}")
        if self.max_degree < 2:
            raise ValueError(
                f"max_degree must be >= 2 (an interior minimum needs three degrees), got {self.max_degree!r}"
            )


def _f(x: np.ndarray) -> np.ndarray:
    return np.sin(2.5 * x) + 0.5 * np.cos(4 * x)


def _features(x: np.ndarray, d: int) -> np.ndarray:
    """Legendre polynomials P_1..P_d of x (the intercept is fitted separately), shape (n, max(d, 1))."""
    return legvander(x, d)[:, 1:] if d > 0 else np.zeros((len(x), 1))


@experiment(
    "bias-variance-tradeoff",
    config=Config,
    sweeps=(
        Sweep(
            "n_train",
            (10, 20, 40, 80),
            "How does the best polynomial degree move as more training points lower the variance?",
            metric="best_degree",
        ),
    ),
)
def bias_variance_tradeoff(run: Run, cfg: Config) -> None:
    x_train = np.linspace(-1, 1, cfg.n_train)
    rng = run.rng(0)
    y_sets = _f(x_train) + cfg.sigma * rng.normal(size=(cfg.n_sets, cfg.n_train))  # (R, n): resampled noise
    y_test = _f(X_GRID) + cfg.sigma * rng.normal(size=(cfg.n_sets, len(X_GRID)))  # fresh noisy test labels
    bias2, var, total, measured = [], [], [], []
    for d in range(cfg.max_degree + 1):
        a_tr, a_gr = _features(x_train, d), _features(X_GRID, d)
        preds = np.empty((cfg.n_sets, len(X_GRID)))
        for r in range(cfg.n_sets):
            w, b = ridge(a_tr, y_sets[r], alpha=1e-8)
            preds[r] = a_gr @ w + b
        mean_pred = preds.mean(0)  # f_bar(x)
        v = preds.var(0, ddof=1)  # per grid point, unbiased over the R sets
        # (f_bar - f)^2 overestimates bias^2 by Var/R (f_bar is itself a noisy mean): subtract it
        bias2.append(max(0.0, float(((mean_pred - _f(X_GRID)) ** 2 - v / cfg.n_sets).mean())))  # >= 0 by definition
        var.append(float(v.mean()))
        total.append(bias2[-1] + var[-1] + cfg.sigma**2)
        measured.append(float(((preds - y_test) ** 2).mean()))
    degs = list(range(cfg.max_degree + 1))
    run.metric("degrees", degs)
    run.metric("bias2", bias2)
    run.metric("variance", var)
    run.metric("expected_error", total)
    run.metric("measured_test_mse", measured)
    best = int(np.argmin(total))
    run.metric("best_degree", degs[best], key=True)

    rho_b = float(spearmanr(degs[: best + 1], bias2[: best + 1]).statistic)
    rho_v = float(spearmanr(degs, var).statistic)
    run.metric("bias2_spearman_all_degrees", float(spearmanr(degs, bias2).statistic))
    run.check_le("bias^2 falls with capacity up to the best degree (Spearman rho with degree)", rho_b, -0.9)
    run.check(
        "beyond it bias^2 stays near zero (<= 1 % of degree 0's at every higher degree)",
        max(bias2[best:]) <= 0.01 * bias2[0],
        observed=max(bias2[best:]),
        expected=f"<= {0.01 * bias2[0]:.5f}",
    )
    run.check_ge("variance rises with capacity (Spearman rho with degree)", rho_v, 0.9)
    ends = min(total[0], total[-1]) / total[best]
    run.check(
        "test error is U-shaped: minimum at an interior degree, both ends >= 2x the minimum",
        0 < best < len(degs) - 1 and ends >= 2,
        observed=f"min at degree {degs[best]}, ends {ends:.1f}x",
        expected="interior minimum, ends >= 2x",
    )
    rel = max(abs(m - t) / t for m, t in zip(measured, total, strict=True))
    # observed: the largest relative difference over the degrees
    run.check_le("bias^2 + variance + sigma^2 equals the measured test MSE", rel, 0.05, strict=True)

    with run.figure(
        "decomposition",
        alt="bias squared falls and variance rises with polynomial degree; their sum "
        "plus the noise is U-shaped with its minimum at a middle degree",
        figsize=(10, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        floor = 1e-4  # a log axis cannot show the ~0 bias^2 of the high degrees: draw it at the floor
        ax1.plot(degs, np.maximum(bias2, floor), "o-", label=f"bias^2 (shown >= {floor:g})")
        ax1.plot(degs, var, "s-", label="variance")
        ax1.plot(degs, total, "k^-", label="bias^2 + variance + sigma^2")
        ax1.plot(degs, measured, "x", color="grey", label="measured test MSE")
        ax1.axhline(cfg.sigma**2, color="grey", linestyle=":", linewidth=0.8)
        ax1.set_yscale("log")
        ax1.set_ylim(bottom=floor / 2)
        ax1.set_xlabel("polynomial degree (capacity)")
        ax1.set_ylabel("squared error")
        ax1.legend(fontsize=8)
        for d, colour in ((1, "C0"), (degs[best], "C2"), (degs[-1], "C3")):
            a_tr, a_gr = _features(x_train, d), _features(X_GRID, d)
            for r in range(8):
                w, b = ridge(a_tr, y_sets[r], alpha=1e-8)
                ax2.plot(
                    X_GRID,
                    a_gr @ w + b,
                    color=colour,
                    alpha=0.35,
                    linewidth=0.8,
                    label=f"degree {d}" if r == 0 else None,
                )
        ax2.plot(X_GRID, _f(X_GRID), "k", linewidth=2, label="f(x)")
        ax2.set_ylim(-2.5, 2.5)
        ax2.set_xlabel("x")
        ax2.legend(fontsize=8)
        ax2.set_title("fits on 8 of the training sets")
