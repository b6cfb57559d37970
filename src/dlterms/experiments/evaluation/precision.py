"""Precision: equal to scikit-learn on random cases with ties, and the precision-recall trade-off
as the decision threshold moves over a real classifier's scores (breast cancer)."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from dlterms import metrics
from dlterms.experiments.evaluation._common import max_diff_vs_sklearn, real_scores
from dlterms.run import Run, experiment


@experiment("precision")
def precision(run: Run) -> None:
    n, diff = max_diff_vs_sklearn(metrics.precision_score, skm.precision_score, run.rng(0))
    run.metric("comparisons_with_sklearn", n)
    run.metric("max_abs_diff_vs_sklearn", diff)
    run.check(
        "precision equals scikit-learn's on >= 500 random cases (all averages, ties)",
        n >= 500 and diff <= 1e-12,
        observed=f"{n} cases, max diff {diff:.1e}",
        expected=">= 500 cases, <= 1e-12",
    )
    run.progress(0.5, "threshold sweep")

    y, s = real_scores(run.seed)
    thresholds = np.quantile(s, np.linspace(0.05, 0.95, 19))
    prec = np.array([metrics.precision_score(y, (s >= t).astype(int)) for t in thresholds])
    rec = np.array([metrics.recall_score(y, (s >= t).astype(int)) for t in thresholds])
    run.metric("precision_low_threshold", prec[0])
    run.metric("precision_high_threshold", prec[-1], key=True)
    run.metric("recall_low_threshold", rec[0])
    run.metric("recall_high_threshold", rec[-1])
    run.check(
        "raising the threshold never raises recall",
        bool(np.all(np.diff(rec) <= 0)),
        observed=f"recall {rec[0]:.3f} -> {rec[-1]:.3f}",
        expected="non-increasing",
    )
    run.check(
        "raising the threshold buys precision",
        prec[-1] > prec[0] + 0.02,
        observed=f"precision {prec[0]:.3f} -> {prec[-1]:.3f}",
        expected=f"> {prec[0] + 0.02:.3f}",
    )
    run.check(
        "and costs recall (the trade-off)",
        rec[-1] < rec[0] - 0.2,
        observed=f"recall {rec[0]:.3f} -> {rec[-1]:.3f}",
        expected=f"< {rec[0] - 0.2:.3f}",
    )
    with run.figure("tradeoff", alt="precision rises and recall falls as the decision threshold rises") as fig:
        ax = fig.subplots()
        ax.plot(thresholds, prec, marker="o", label="precision")
        ax.plot(thresholds, rec, marker="s", label="recall")
        ax.set_xlabel("decision threshold on P(benign)")
        ax.set_ylabel("score")
        ax.set_title("Precision-recall trade-off (breast cancer, logistic regression)")
        ax.legend()
