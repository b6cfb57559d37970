"""Recall: equal to scikit-learn on random cases, and what accuracy hides on a 95/5 problem:
high accuracy with low recall of the minority class."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from dlterms import metrics
from dlterms.experiments.evaluation._common import imbalanced_problem, max_diff_vs_sklearn
from dlterms.run import Run, experiment


@experiment("recall")
def recall(run: Run) -> None:
    n, diff = max_diff_vs_sklearn(metrics.recall_score, skm.recall_score, run.rng(0))
    run.metric("comparisons_with_sklearn", n)
    run.metric("max_abs_diff_vs_sklearn", diff)
    run.check(
        "recall equals scikit-learn's on >= 500 random cases (all averages, ties)",
        n >= 500 and diff <= 1e-12,
        observed=f"{n} cases, max diff {diff:.1e}",
        expected=">= 500 cases, <= 1e-12",
    )

    prob = imbalanced_problem(run.seed)
    pred = (prob.scores >= 0.5).astype(int)
    acc = metrics.accuracy_score(prob.y_test, pred)
    per_class = metrics.recall_score(prob.y_test, pred, average=None)
    run.metric("minority_fraction", prob.minority_fraction)
    run.metric("accuracy", acc)
    run.metric("recall_majority", per_class[0])
    run.metric("recall_minority", per_class[1], key=True)
    run.check("accuracy looks good on the 95/5 problem", acc >= 0.9, observed=round(acc, 4), expected=">= 0.90")
    run.check(
        "while recall of the minority class is low",
        per_class[1] <= 0.5,
        observed=round(float(per_class[1]), 4),
        expected="<= 0.50",
    )
    with run.figure("per-class", alt="accuracy is high while recall of the minority class is low") as fig:
        ax = fig.subplots()
        names = ["accuracy", "recall (majority)", "recall (minority)"]
        vals = [acc, per_class[0], per_class[1]]
        ax.bar(names, vals, color=["grey", "tab:blue", "tab:red"])
        for i, v in enumerate(vals):
            ax.text(i, v + 0.01, f"{v:.2f}", ha="center")
        ax.set_ylim(0, 1.1)
        ax.set_title(f"95/5 imbalance: accuracy hides the minority class (n_test={len(pred)})")
    np.testing.assert_equal(len(per_class), 2)
