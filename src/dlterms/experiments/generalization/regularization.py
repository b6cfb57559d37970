r"""Regularization: an L2 penalty narrows the overfitting gap and shrinks the weights; an L1 penalty
(the lasso) zeroes irrelevant features; our ridge and lasso solutions equal scikit-learn's.

(1) The shared overfitting setup (`_common.py`: 200 digits, 30 % wrong labels, MLP 512-512, 100 epochs)
with and without the penalty $\lambda \sum W^2$ ($\lambda$ = 3e-3) on every weight matrix: the
train-test gap and the weight norm must both fall. (2) scikit-learn's diabetes regression (442 patients,
10 standardised clinical features) with 20 extra columns of pure Gaussian noise. The lasso with the
"universal" penalty $\alpha = \hat\sigma\sqrt{2 \log d / n}$ (Donoho & Johnstone; $\hat\sigma$ from
the least-squares residuals, not tuned on the outcome) must zero >= 80 % of the 20 irrelevant columns
(the spec), while ridge zeroes none. (3) Our closed-form ridge and coordinate-descent lasso must match
`sklearn.linear_model.Ridge`/`Lasso` coefficients to 1e-3 on that data.

Thresholds: docs/experiments.md#regularization.
"""

from dataclasses import dataclass

import numpy as np

from dlterms.experiments.generalization._common import OverfitConfig, plot_curves, train_overfit
from dlterms.methods.regularization import l2_penalty, lasso, ridge
from dlterms.params import Sweep
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the regularization experiment; the defaults are the recorded run."""

    l2: float = 3e-3  # lambda of the L2 penalty on the overfitting setup
    n_train: int = 200  # training digits of the overfitting setup; the remaining ones are the test set
    label_noise: float = 0.3  # fraction of the setup's training labels replaced by a different class
    epochs: int = 100  # training epochs of each network
    n_noise: int = 20  # irrelevant Gaussian features appended to the diabetes data
    ridge_alpha: float = 1.0  # ridge penalty on the diabetes data

    def __post_init__(self) -> None:
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2!r}")
        if not 20 <= self.n_train <= 1700:
            raise ValueError(f"n_train must be in [20, 1700] (1797 digits in all), got {self.n_train!r}")
        if not 0.0 <= self.label_noise < 0.9:
            raise ValueError(f"label_noise must be in [0, 0.9), got {self.label_noise!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs!r}")
        if not 1 <= self.n_noise <= 400:
            raise ValueError(f"n_noise must be in [1, 400] (442 patients), got {self.n_noise!r}")
        if self.ridge_alpha < 0:
            raise ValueError(f"ridge_alpha must be >= 0, got {self.ridge_alpha!r}")


@experiment(
    "regularization",
    config=Config,
    sweeps=(
        Sweep(
            "l2",
            (3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
            "How does test accuracy move with the L2 strength: too weak leaves the overfitting, too strong underfits?",
            metric="test_acc_l2",
        ),
    ),
)
def regularization(run: Run, cfg: Config) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Lasso, Ridge

    # (1) L2 on the overfitting setup
    setup = OverfitConfig(n_train=cfg.n_train, label_noise=cfg.label_noise, epochs=cfg.epochs)
    plain = train_overfit(setup, run.seed, run.device)
    run.progress(0.45, "plain network trained")
    decayed = train_overfit(setup, run.seed, run.device, penalty=lambda m: l2_penalty(m, cfg.l2))
    run.progress(0.9, "L2-penalised network trained")
    gap_p, gap_l2 = plain.gap[-1], decayed.gap[-1]
    run.metric("gap_plain", gap_p)
    run.metric("gap_l2", gap_l2, key=True)
    run.metric("test_acc_plain", plain.test_acc[-1])
    run.metric("test_acc_l2", decayed.test_acc[-1])
    run.metric("weight_norm_plain", plain.weight_norm)
    run.metric("weight_norm_l2", decayed.weight_norm)
    run.check(
        "L2 narrows the train-test gap by >= 10 points",
        gap_l2 <= gap_p - 0.10,
        observed=gap_l2,
        expected=f"<= {gap_p - 0.10:.4f} (no penalty {gap_p:.4f} - 0.10)",
    )
    run.check(
        "L2 shrinks the weight norm",
        decayed.weight_norm < plain.weight_norm,
        observed=decayed.weight_norm,
        expected=f"< {plain.weight_norm:.3f}",
    )

    # (2) L1 zeroes irrelevant features
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    X = np.hstack([X, run.rng(1).normal(size=(len(X), cfg.n_noise))])  # (442, 10 + n_noise): 10 real, then noise
    n, d = X.shape
    w_ols, b_ols = ridge(X, y, alpha=0.0)
    sigma = float(np.sqrt(((y - X @ w_ols - b_ols) ** 2).sum() / (n - d - 1)))
    alpha = sigma * np.sqrt(2 * np.log(d) / n)
    w_l1, b_l1 = lasso(X, y, alpha)
    w_l2, b_l2 = ridge(X, y, cfg.ridge_alpha)
    zero_noise = float(np.mean(w_l1[10:] == 0))
    run.metric("lasso_alpha", alpha)
    run.metric("lasso_zeroed_noise_fraction", zero_noise)
    run.metric("lasso_kept_real_features", int(np.sum(w_l1[:10] != 0)))
    run.metric("ridge_zeroed_noise_fraction", float(np.mean(w_l2[10:] == 0)))
    run.check_ge(f"L1 zeroes >= 80 % of {cfg.n_noise} irrelevant features", zero_noise, 0.80)

    # (3) agreement with scikit-learn
    ref_l1 = Lasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
    ref_l2 = Ridge(alpha=cfg.ridge_alpha).fit(X, y)
    err_l1 = float(max(np.abs(w_l1 - ref_l1.coef_).max(), abs(b_l1 - ref_l1.intercept_)))
    err_l2 = float(max(np.abs(w_l2 - ref_l2.coef_).max(), abs(b_l2 - ref_l2.intercept_)))
    run.metric("lasso_max_abs_diff_vs_sklearn", err_l1)
    run.metric("ridge_max_abs_diff_vs_sklearn", err_l2)
    run.check_le("our lasso matches sklearn.linear_model.Lasso", err_l1, 1e-3, strict=True)
    run.check_le("our ridge matches sklearn.linear_model.Ridge", err_l2, 1e-3, strict=True)

    with run.figure(
        "l2-and-l1",
        alt="left: train and test accuracy with and without an L2 penalty; right: "
        "lasso and ridge coefficients of 10 real and 20 noise features, the lasso's noise "
        "coefficients are exactly zero",
        figsize=(10, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        plot_curves(ax1, {"no penalty": plain, f"L2 lambda={cfg.l2:g}": decayed})
        ax1.set_title("overfitting setup")
        idx = np.arange(d)
        ax2.bar(idx - 0.2, w_l2, width=0.4, label=f"ridge (alpha={cfg.ridge_alpha:g})")
        ax2.bar(idx + 0.2, w_l1, width=0.4, label=f"lasso (alpha={alpha:.2f})")
        ax2.axvline(9.5, color="grey", linestyle=":")
        ax2.set_xlabel(f"feature (0-9 diabetes, 10-{9 + cfg.n_noise} noise)")
        ax2.set_ylabel("coefficient")
        ax2.legend(fontsize=8)
        ax2.set_title("L1 sets irrelevant coefficients to zero")
