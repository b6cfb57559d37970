"""ROC curve: equal to scikit-learn's (points and thresholds) on random cases with ties, and the
curve of a real classifier against random scores."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from dlterms import metrics
from dlterms.experiments.evaluation._common import random_score_cases, real_scores
from dlterms.run import Run, experiment


@experiment("roc-curve")
def roc_curve(run: Run) -> None:
    worst, n = 0.0, 0
    for y, s in random_score_cases(run.rng(0)):
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

    y, s = real_scores(run.seed)
    fpr, tpr, _ = metrics.roc_curve(y, s)
    area = metrics.auc(fpr, tpr)
    rng = run.rng(1)
    y_rand = rng.integers(0, 2, 4000)
    fpr_r, tpr_r, _ = metrics.roc_curve(y_rand, rng.random(4000))
    area_r = metrics.auc(fpr_r, tpr_r)
    run.metric("auc_model", area, key=True)
    run.metric("auc_random_scores", area_r)
    run.check(
        "the curve runs from (0, 0) to (1, 1) and never decreases",
        fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0),
        observed=f"{len(fpr)} points",
        expected="monotone, (0,0) to (1,1)",
    )
    run.check(
        "a real classifier's curve bows above the diagonal", area >= 0.9, observed=round(area, 4), expected=">= 0.90"
    )
    run.check(
        "random scores follow the diagonal", abs(area_r - 0.5) < 0.03, observed=round(area_r, 4), expected="0.5 +- 0.03"
    )
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
