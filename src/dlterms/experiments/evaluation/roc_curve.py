"""ROC curve: equal to scikit-learn's (points and thresholds) on random cases with ties, and the
curve of a real classifier against random scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from dlterms import metrics
from dlterms.experiments.evaluation._common import N_CASES, random_score_cases, real_scores
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the roc-curve experiment; the defaults are the recorded run."""

    n_cases: int = N_CASES  # random label/score cases with ties compared with scikit-learn
    c: float = 0.002  # inverse L2 strength of the breast-cancer logistic regression (small: classes overlap)
    n_random: int = 4000  # examples with random labels and random scores

    def __post_init__(self) -> None:
        if self.n_cases < 1:
            raise ValueError(f"n_cases must be >= 1, got {self.n_cases!r}")
        if not self.c > 0:
            raise ValueError(f"c must be > 0, got {self.c!r}")
        if self.n_random < 10:
            raise ValueError(f"n_random must be >= 10, got {self.n_random!r}")


@experiment("roc-curve", config=Config)
def roc_curve(run: Run, cfg: Config) -> None:
    worst, n = 0.0, 0
    for y, s in random_score_cases(run.rng(0), cfg.n_cases):
        for drop in (True, False):
            ours = metrics.roc_curve(y, s, drop_intermediate=drop)
            for a, b in zip(ours, skm.roc_curve(y, s, drop_intermediate=drop)):
                if a.shape != b.shape:
                    worst = float("inf")
                    continue
                finite = np.isfinite(b)
                worst = max(worst, float(np.max(np.abs(a[finite] - b[finite]), initial=0.0)))
                worst = worst if np.array_equal(np.isfinite(a), finite) else float("inf")
        n += 1
    run.metric("cases", n)
    run.metric("max_abs_diff_vs_sklearn", worst)
    run.check(
        "fpr, tpr and thresholds equal scikit-learn's on >= 500 random cases with ties",
        n >= 500 and worst <= 1e-12,
        observed=f"{n} cases, max diff {worst:.1e}",
        expected=">= 500, <= 1e-12",
    )

    y, s = real_scores(run.seed, cfg.c)
    fpr, tpr, _ = metrics.roc_curve(y, s)
    area = metrics.auc(fpr, tpr)
    rng = run.rng(1)
    y_rand = rng.integers(0, 2, cfg.n_random)
    fpr_r, tpr_r, _ = metrics.roc_curve(y_rand, rng.random(cfg.n_random))
    area_r = metrics.auc(fpr_r, tpr_r)
    run.metric("auc_model", area, key=True)
    run.metric("auc_random_scores", area_r)
    run.check(
        "the curve runs from (0, 0) to (1, 1) and never decreases",
        fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0),
        observed=f"{len(fpr)} points",
        expected="monotone, (0,0) to (1,1)",
    )
    run.check_ge("a real classifier's curve bows above the diagonal", area, 0.9)
    run.check_between("random scores follow the diagonal", area_r, 0.47, 0.53)
    with run.figure(
        "roc", alt="ROC curve of a logistic regression on breast cancer and of random scores", figsize=(5, 5)
    ) as fig:
        ax = fig.subplots()
        ax.plot(fpr, tpr, drawstyle="steps-post", label=f"logistic regression (AUC {area:.3f})")
        ax.plot(fpr_r, tpr_r, alpha=0.7, label=f"random scores (AUC {area_r:.3f})")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_aspect("equal")
        ax.legend(loc="lower right")
