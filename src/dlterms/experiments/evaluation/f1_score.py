"""F1 score: equal to scikit-learn on random cases, and on a 95/5 problem it exposes the classifier
that always answers "majority", which accuracy rates as excellent."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from dlterms import metrics
from dlterms.experiments.evaluation._common import imbalanced_problem, max_diff_vs_sklearn
from dlterms.run import Run, experiment


@experiment("f1-score")
def f1_score(run: Run) -> None:
    n, diff = max_diff_vs_sklearn(metrics.f1_score, skm.f1_score, run.rng(0))
    run.metric("comparisons_with_sklearn", n)
    run.metric("max_abs_diff_vs_sklearn", diff)
    run.check(
        "F1 equals scikit-learn's on >= 500 random cases (all averages, ties)",
        n >= 500 and diff <= 1e-12,
        observed=f"{n} cases, max diff {diff:.1e}",
        expected=">= 500 cases, <= 1e-12",
    )

    prob = imbalanced_problem(run.seed, hard=False)
    y = prob.y_test
    always_majority = np.zeros_like(y)
    # A threshold chosen for F1 on the trained model's scores (the best of a sweep).
    sweep = np.linspace(0.05, 0.95, 19)
    f1s = [metrics.f1_score(y, (prob.scores >= t).astype(int)) for t in sweep]
    best_t = float(sweep[int(np.argmax(f1s))])
    model_pred = (prob.scores >= best_t).astype(int)
    acc_base, f1_base = metrics.accuracy_score(y, always_majority), metrics.f1_score(y, always_majority)
    acc_model, f1_model = metrics.accuracy_score(y, model_pred), metrics.f1_score(y, model_pred)
    run.metric("accuracy_always_majority", acc_base)
    run.metric("f1_always_majority", f1_base)
    run.metric("accuracy_model", acc_model)
    run.metric("f1_model", f1_model, key=True)
    run.metric("model_threshold", best_t)
    run.check(
        "the always-majority classifier's accuracy looks good",
        acc_base >= 0.9,
        observed=round(acc_base, 4),
        expected=">= 0.90",
    )
    run.check("its F1 on the minority class exposes it", f1_base == 0.0, observed=f1_base, expected="0")
    run.check(
        "F1 separates the two classifiers far more than accuracy does",
        (f1_model - f1_base) > 5 * abs(acc_model - acc_base),
        observed=f"F1 gap {f1_model - f1_base:.3f}, accuracy gap {abs(acc_model - acc_base):.3f}",
        expected="F1 gap > 5x accuracy gap",
    )
    with run.figure("accuracy-vs-f1", alt="accuracy barely tells the two classifiers apart, F1 does") as fig:
        ax = fig.subplots()
        xs = np.arange(2)
        ax.bar(xs - 0.2, [acc_base, acc_model], width=0.4, label="accuracy")
        ax.bar(xs + 0.2, [f1_base, f1_model], width=0.4, label="F1 (minority)")
        ax.set_xticks(xs, ["always majority", f"logistic regression (t={best_t:.2f})"])
        ax.set_ylim(0, 1.05)
        ax.legend()
        ax.set_title("95/5 imbalance")
