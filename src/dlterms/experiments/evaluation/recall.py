"""Recall: equal to scikit-learn on random cases, and what accuracy hides on a 95/5 problem:
high accuracy with low recall of the minority class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from dlterms import metrics
from dlterms.experiments.evaluation._common import imbalanced_problem, max_diff_vs_sklearn
from dlterms.params import Sweep
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the recall experiment; the defaults are the recorded run."""

    threshold: float = 0.5  # decision threshold: predict the minority class when its probability >= it
    minority: float = 0.05  # fraction of the minority class in the generated problem
    n: int = 4000  # examples generated (half train, half test)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")
        if not 0.0 < self.minority <= 0.5:
            raise ValueError(f"minority must be in (0, 0.5], got {self.minority!r}")
        if self.n < 100:
            raise ValueError(f"n must be >= 100, got {self.n!r}")


@experiment(
    "recall",
    config=Config,
    sweeps=(
        Sweep(
            "threshold",
            (0.1, 0.2, 0.35, 0.5),
            "How much minority recall does lowering the decision threshold buy, on a rare and a less rare class?",
            metric="recall_minority",
            by="minority",
            by_values=(0.05, 0.2),
        ),
    ),
)
def recall(run: Run, cfg: Config) -> None:
    n, diff = max_diff_vs_sklearn(metrics.recall_score, skm.recall_score, run.rng(0))
    run.metric("comparisons_with_sklearn", n)
    run.metric("max_abs_diff_vs_sklearn", diff)
    run.check(
        "recall equals scikit-learn's on >= 500 random cases (all averages, ties)",
        n >= 500 and diff <= 1e-12,
        observed=f"{n} cases, max diff {diff:.1e}",
        expected=">= 500 cases, <= 1e-12",
    )

    prob = imbalanced_problem(run.seed, cfg.minority, cfg.n)
    pred = (prob.scores >= cfg.threshold).astype(int)
    acc = metrics.accuracy_score(prob.y_test, pred)
    per_class = metrics.recall_score(prob.y_test, pred, average=None)
    run.metric("minority_fraction", prob.minority_fraction)
    run.metric("accuracy", acc)
    run.metric("recall_majority", per_class[0])
    run.metric("recall_minority", per_class[1], key=True)
    run.check_ge("accuracy looks good on the 95/5 problem", acc, 0.9)
    run.check_le("while recall of the minority class is low", float(per_class[1]), 0.5)
    with run.figure("per-class", alt="accuracy is high while recall of the minority class is low") as fig:
        ax = fig.subplots()
        names = ["accuracy", "recall (majority)", "recall (minority)"]
        vals = [acc, per_class[0], per_class[1]]
        ax.bar(names, vals, color=["grey", "tab:blue", "tab:red"])
        for i, v in enumerate(vals):
            ax.text(i, v + 0.01, f"{v:.2f}", ha="center")
        ax.set_ylim(0, 1.1)
        share = f"{100 * (1 - cfg.minority):g}/{100 * cfg.minority:g}"
        ax.set_title(f"{share} imbalance: accuracy hides the minority class (n_test={len(pred)})")
    np.testing.assert_equal(len(per_class), 2)
