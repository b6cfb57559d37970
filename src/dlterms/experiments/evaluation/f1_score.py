"""F1 score: equal to scikit-learn on random cases, and on real imbalanced data it exposes a trained
classifier that accuracy rates as good as a useless one.

Data and model (`_common.mnist1d_one_vs_rest`): MNIST-1D's ten one-vs-rest problems (digit k against
the other nine, about 10 % positives each), one L2 logistic regression per digit trained on 3 000
signals; thresholds are chosen on 1 000 validation signals and every number is measured on the 1 000
test signals. At the default threshold 0.5 the weak linear scorers predict almost no positives, so
their accuracy is that of the classifier that always answers "not k" (about 0.90) while their F1 on the
positive class is near 0. Choosing each digit's threshold on validation to maximise F1 raises test F1
on (nearly) every digit while test accuracy falls: the two metrics rank the same pair of classifiers in
opposite orders. Claims are counts and means over the ten problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from dlterms import metrics
from dlterms.experiments.evaluation._common import max_diff_vs_sklearn, mnist1d_one_vs_rest
from dlterms.params import Sweep
from dlterms.run import Run, experiment


def _best_f1_threshold(y: np.ndarray, s: np.ndarray) -> float:
    """The score threshold with the highest F1 on (y, s): predict positive when s >= t."""
    ts = np.unique(s)
    f1s = [metrics.f1_score(y, (s >= t).astype(int), zero_division=0.0) for t in ts]
    return float(ts[int(np.argmax(f1s))])


@dataclass(frozen=True)
class Config:
    """Parameters of the f1-score experiment; the defaults are the recorded run."""

    threshold: float = 0.5  # decision threshold of the untuned classifiers (predict positive when P >= it)
    c: float = 1.0  # inverse L2 strength of the one-vs-rest logistic regressions

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")
        if not self.c > 0:
            raise ValueError(f"c must be > 0, got {self.c!r}")


@experiment(
    "f1-score",
    config=Config,
    sweeps=(
        Sweep(
            "threshold",
            (0.1, 0.2, 0.3, 0.5),
            "How does F1 on a rare positive class move with the decision threshold?",
            metric="f1_default_threshold_mean",
        ),
    ),
)
def f1_score(run: Run, cfg: Config) -> None:
    n, diff = max_diff_vs_sklearn(metrics.f1_score, skm.f1_score, run.rng(0))
    run.metric("comparisons_with_sklearn", n)
    run.metric("max_abs_diff_vs_sklearn", diff)
    run.check(
        "F1 equals scikit-learn's on >= 500 random cases (all averages, ties)",
        n >= 500 and diff <= 1e-12,
        observed=f"{n} cases, max diff {diff:.1e}",
        expected=">= 500 cases, <= 1e-12",
    )
    run.progress(0.3, "one-vs-rest scorers")

    o = mnist1d_one_vs_rest(run.seed, cfg.c)
    rows = []
    for k in range(10):
        y, s = o.y_test[k], o.s_test[k]
        t = _best_f1_threshold(o.y_val[k], o.s_val[k])  # chosen on validation
        default, tuned, never = (s >= cfg.threshold).astype(int), (s >= t).astype(int), np.zeros_like(y)
        rows.append(
            [
                metrics.accuracy_score(y, never),
                metrics.f1_score(y, never, zero_division=0.0),
                metrics.accuracy_score(y, default),
                metrics.f1_score(y, default, zero_division=0.0),
                metrics.recall_score(y, default, zero_division=0.0),
                metrics.accuracy_score(y, tuned),
                metrics.f1_score(y, tuned, zero_division=0.0),
                t,
            ]
        )
    r = np.array(rows)  # (10, 8)
    acc_never, f1_never, acc_def, f1_def, rec_def, acc_tuned, f1_tuned, thr = r.T
    run.metric("positive_fraction_test", float(o.y_test.mean()))
    run.metric("accuracy_always_negative_mean", float(acc_never.mean()))
    run.metric("accuracy_default_threshold_mean", float(acc_def.mean()))
    run.metric("f1_default_threshold_mean", float(f1_def.mean()), key=True)
    run.metric("recall_default_threshold_mean", float(rec_def.mean()))
    run.metric("accuracy_tuned_threshold_mean", float(acc_tuned.mean()))
    run.metric("f1_tuned_threshold_mean", float(f1_tuned.mean()))
    run.metric("f1_default_threshold_per_digit", f1_def.tolist())
    run.metric("f1_tuned_threshold_per_digit", f1_tuned.tolist())
    run.metric("tuned_threshold_per_digit", thr.tolist())

    gap = abs(acc_def.mean() - acc_never.mean())
    run.check(
        "at the default threshold the trained classifiers' accuracy looks good (mean >= 0.89) and is "
        "within 1 point of always answering 'negative'",
        acc_def.mean() >= 0.89 and gap <= 0.01,
        observed=f"{acc_def.mean():.4f} vs {acc_never.mean():.4f} (gap {gap:.4f})",
        expected=">= 0.89, gap <= 0.01",
    )
    run.check(
        "F1 on the positive class exposes them: mean F1 <= 0.25 (always-negative: 0)",
        f1_def.mean() <= 0.25 and f1_never.max() == 0.0,
        observed=f"{f1_def.mean():.4f} (recall {rec_def.mean():.3f})",
        expected="<= 0.25",
    )
    f1_up, acc_down = int((f1_tuned > f1_def).sum()), int((acc_tuned < acc_def).sum())
    run.check(
        "F1 and accuracy disagree: the threshold chosen on validation for F1 raises test F1 on >= 9 of 10 "
        "digits while it lowers test accuracy on >= 8 of 10",
        f1_up >= 9 and acc_down >= 8,
        observed=f"F1 up on {f1_up}, accuracy down on {acc_down}",
        expected="F1 up >= 9, accuracy down >= 8",
    )

    with run.figure(
        "accuracy-vs-f1",
        alt="per digit, accuracy and F1 of the default-threshold and the F1-tuned classifiers on MNIST-1D "
        "one-vs-rest: accuracy prefers the default, F1 the tuned threshold",
        figsize=(9, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2, sharex=True)
        xs = np.arange(10)
        for ax, (a, b, name) in zip(((ax1), (ax2)), ((acc_def, acc_tuned, "accuracy"), (f1_def, f1_tuned, "F1"))):
            ax.bar(xs - 0.2, a, width=0.4, label=f"threshold {cfg.threshold:g}")
            ax.bar(xs + 0.2, b, width=0.4, label="threshold tuned for F1 on validation")
            ax.set(xlabel="positive digit", ylabel=f"test {name}", ylim=(0, 1.05), title=name)
            ax.set_xticks(xs)
        ax1.axhline(acc_never.mean(), ls="--", c="gray", label="always negative")
        ax1.legend(fontsize=7)
