r"""Classification metrics: precision, recall, F1, confusion matrix, ROC curve, AUC.

Naming rule (scikit-learn's): `*_score` is higher-is-better, `*_loss` lower-is-better.

For one class $c$ with true positives $TP$, false positives $FP$ and false negatives $FN$:

$$\text{precision} = \frac{TP}{TP + FP}, \qquad \text{recall} = \frac{TP}{TP + FN}, \qquad
F_1 = \frac{2\,TP}{2\,TP + FP + FN} = \frac{2PR}{P + R}$$

Averages over classes: `macro` (unweighted mean of per-class scores), `weighted` (mean weighted by
each class's number of true examples), `micro` (the formula on TP, FP, FN summed over classes),
`None` (the per-class scores), `binary` (the class `pos_label` only). When a denominator is 0
the score is undefined and `zero_division` (default 0.0) is returned for it.

The ROC curve plots the true-positive rate against the false-positive rate as the decision
threshold sweeps the scores from high to low; tied scores move both rates at once. The area
under it equals the probability that a random positive is scored above a random negative, ties
counting one half (the Mann-Whitney U statistic):

$$\mathrm{AUC} = \frac{1}{n_+ n_-}\sum_{i \in +}\sum_{j \in -}\Big([s_i > s_j] + \tfrac12[s_i = s_j]\Big)
= \frac{R_+ - n_+(n_+ + 1)/2}{n_+ n_-}$$

where $R_+$ is the sum of the positives' ranks among all scores (tied scores get their average
rank). The rank form needs one sort: $O(n \log n)$ instead of $O(n_+ n_-)$.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "accuracy_score",
    "auc",
    "balanced_accuracy_score",
    "confusion_matrix",
    "f1_score",
    "mcnemar_exact_pvalue",
    "precision_recall_curve",
    "precision_recall_fscore_support",
    "precision_score",
    "recall_score",
    "roc_auc_score",
    "roc_curve",
]

_AVERAGES = ("binary", "micro", "macro", "weighted", None)


# --------------------------------------------------------------------------- input checks


def _as_1d(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one example")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN at index {int(np.flatnonzero(np.isnan(arr))[0])}")
    return arr


def _check_pair(y_true, y_other, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    yt = _as_1d("y_true", y_true)
    yo = _as_1d(other_name, y_other)
    if len(yt) != len(yo):
        raise ValueError(f"y_true and {other_name} must have the same length, got {len(yt)} and {len(yo)}")
    return yt, yo


def _check_scores(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    yt, ys = _check_pair(y_true, y_score, "y_score")
    ys = ys.astype(np.float64)
    if not np.isfinite(ys).all():
        raise ValueError("y_score contains infinite values")
    return yt, ys


def _binary_labels(y_true: np.ndarray, pos_label) -> np.ndarray:
    """y_true as booleans (True = positive), checking that it holds at most two classes."""
    classes = np.unique(y_true)
    if len(classes) > 2:
        raise ValueError(f"y_true must be binary for a ROC curve, got {len(classes)} classes: {classes[:5].tolist()}")
    if pos_label is None:
        if not (set(classes.tolist()) <= {0, 1} or set(classes.tolist()) <= {-1, 1}):
            raise ValueError(f"y_true has labels {classes.tolist()}; say which is positive with pos_label")
        pos_label = 1
    return y_true == pos_label


# --------------------------------------------------------------------------- counting metrics


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """Counts C[i, j] of examples with true label labels[i] predicted as labels[j]."""
    yt, yp = _check_pair(y_true, y_pred, "y_pred")
    labels = np.unique(np.concatenate([yt, yp])) if labels is None else np.asarray(labels)
    if labels.size == 0:
        raise ValueError("labels is empty")
    index = {v: i for i, v in enumerate(labels.tolist())}
    k = len(labels)
    ti = np.array([index.get(v, -1) for v in yt.tolist()])
    pi = np.array([index.get(v, -1) for v in yp.tolist()])
    keep = (ti >= 0) & (pi >= 0)
    # One bincount over the flattened (true, predicted) index pairs.
    return np.bincount(ti[keep] * k + pi[keep], minlength=k * k).reshape(k, k)


def accuracy_score(y_true, y_pred) -> float:
    """Fraction of predictions equal to the truth."""
    yt, yp = _check_pair(y_true, y_pred, "y_pred")
    return float(np.mean(yt == yp))


def balanced_accuracy_score(y_true, y_pred) -> float:
    """Mean recall over the classes present in y_true."""
    yt, yp = _check_pair(y_true, y_pred, "y_pred")
    classes = np.unique(yt)
    return float(np.mean([np.mean(yp[yt == c] == c) for c in classes]))


def _divide(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    out = np.full(num.shape, float(zero_division))
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_fscore_support(
    y_true, y_pred, *, average: str | None = "binary", pos_label=1, labels=None, zero_division: float = 0.0
):
    """(precision, recall, f1, support) for the chosen average (see the module docstring).

    support is the number of true examples per class (None when averaged, as scikit-learn does).
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    if zero_division not in (0, 0.0, 1, 1.0) and not (isinstance(zero_division, float) and np.isnan(zero_division)):
        raise ValueError(f"zero_division must be 0.0, 1.0 or nan, got {zero_division!r}")
    yt, yp = _check_pair(y_true, y_pred, "y_pred")
    present = np.unique(np.concatenate([yt, yp]))
    if average == "binary":
        if len(present) > 2:
            raise ValueError(
                f"average='binary' needs binary labels, got {len(present)} classes; "
                "use average='macro', 'micro' or 'weighted'"
            )
        if pos_label not in present.tolist() and len(present) == 2:
            raise ValueError(f"pos_label={pos_label!r} is not a label; labels are {present.tolist()}")
        labels = np.asarray([pos_label])
    elif labels is None:
        labels = present
    else:
        labels = np.asarray(labels)
    # Per-class TP, FP, FN (vectorised over labels by broadcasting).
    t = yt[None, :] == labels[:, None]  # (K, N) is-true-class
    p = yp[None, :] == labels[:, None]  # (K, N) is-predicted-class
    tp = (t & p).sum(1).astype(np.float64)
    fp = (~t & p).sum(1).astype(np.float64)
    fn = (t & ~p).sum(1).astype(np.float64)
    support = t.sum(1)
    if average == "micro":
        tp, fp, fn = tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True)
    precision = _divide(tp, tp + fp, zero_division)
    recall = _divide(tp, tp + fn, zero_division)
    f1 = _divide(2 * tp, 2 * tp + fp + fn, zero_division)
    if average is None:
        return precision, recall, f1, support
    if average == "weighted":
        w = support.astype(np.float64)
        if w.sum() == 0:
            return float(zero_division), float(zero_division), float(zero_division), None
        return (
            float(np.average(precision, weights=w)),
            float(np.average(recall, weights=w)),
            float(np.average(f1, weights=w)),
            None,
        )
    return float(np.mean(precision)), float(np.mean(recall)), float(np.mean(f1)), None


def precision_score(
    y_true, y_pred, *, average: str | None = "binary", pos_label=1, labels=None, zero_division: float = 0.0
):
    """TP / (TP + FP): of the examples predicted positive, the fraction that are."""
    return precision_recall_fscore_support(
        y_true, y_pred, average=average, pos_label=pos_label, labels=labels, zero_division=zero_division
    )[0]


def recall_score(
    y_true, y_pred, *, average: str | None = "binary", pos_label=1, labels=None, zero_division: float = 0.0
):
    """TP / (TP + FN): of the positive examples, the fraction found."""
    return precision_recall_fscore_support(
        y_true, y_pred, average=average, pos_label=pos_label, labels=labels, zero_division=zero_division
    )[1]


def f1_score(y_true, y_pred, *, average: str | None = "binary", pos_label=1, labels=None, zero_division: float = 0.0):
    """Harmonic mean of precision and recall, 2 TP / (2 TP + FP + FN)."""
    return precision_recall_fscore_support(
        y_true, y_pred, average=average, pos_label=pos_label, labels=labels, zero_division=zero_division
    )[2]


# --------------------------------------------------------------------------- threshold curves


def _binary_clf_curve(y_true, y_score, pos_label=None):
    """Cumulative false and true positives at each distinct score, from the highest down."""
    yt, ys = _check_scores(y_true, y_score)
    pos = _binary_labels(yt, pos_label)
    order = np.argsort(ys, kind="mergesort")[::-1]  # scores high -> low
    ys, pos = ys[order], pos[order]
    # The last index of each run of equal scores: a threshold moves past all ties at once.
    distinct = np.flatnonzero(np.diff(ys))
    ends = np.r_[distinct, len(ys) - 1]
    tps = np.cumsum(pos)[ends].astype(np.float64)
    fps = (1 + ends) - tps
    return fps, tps, ys[ends]


def roc_curve(y_true, y_score, *, pos_label=None, drop_intermediate: bool = True):
    """(fpr, tpr, thresholds): the ROC curve's points, starting at (0, 0) with threshold +inf.

    With `drop_intermediate`, points on a straight segment between two neighbours are dropped
    (they do not change the curve's shape or area), as scikit-learn does.
    """
    fps, tps, thresholds = _binary_clf_curve(y_true, y_score, pos_label)
    if drop_intermediate and len(fps) > 2:
        # Keep a point only where the second difference is non-zero (a change of slope).
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds]
    if fps[-1] == 0:
        raise ValueError("y_true has no negative examples: the false-positive rate is undefined")
    if tps[-1] == 0:
        raise ValueError("y_true has no positive examples: the true-positive rate is undefined")
    return fps / fps[-1], tps / tps[-1], thresholds


def precision_recall_curve(y_true, y_score, *, pos_label=None):
    """(precision, recall, thresholds) for every distinct threshold, ending at recall 0, precision 1."""
    fps, tps, thresholds = _binary_clf_curve(y_true, y_score, pos_label)
    if tps[-1] == 0:
        raise ValueError("y_true has no positive examples: recall is undefined")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    # Reverse so recall decreases, then append the (recall 0, precision 1) end point.
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def auc(x, y) -> float:
    """Area under a curve through the points (x, y) by the trapezoidal rule; x must be monotonic."""
    x = _as_1d("x", x).astype(np.float64)
    y = _as_1d("y", y).astype(np.float64)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if len(x) < 2:
        raise ValueError(f"at least 2 points are needed to compute an area, got {len(x)}")
    dx = np.diff(x)
    if np.all(dx >= 0):
        direction = 1.0
    elif np.all(dx <= 0):
        direction = -1.0
    else:
        raise ValueError("x is neither increasing nor decreasing, so the area is not defined")
    return float(direction * np.trapezoid(y, x))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks (one sort: O(n log n))."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    # Start index of each run of equal values, and the run's average rank.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_vals)) + 1]
    ends = np.r_[starts[1:], len(values)]
    run_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def _binary_auc(pos: np.ndarray, ys: np.ndarray) -> float:
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            "Only one class present in y_true. ROC AUC is not defined in that case: "
            "it compares positives with negatives"
        )
    ranks = _average_ranks(ys)
    # U = R_+ - n_+(n_+ + 1)/2 counts the (positive, negative) pairs ordered correctly, ties 1/2.
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc_score(
    y_true, y_score, *, pos_label=None, average: str | None = "macro", multi_class: str = "ovr"
) -> float | np.ndarray:
    """Area under the ROC curve via the Mann-Whitney rank statistic.

    Binary: `y_score` is one score per example (higher = more positive). Multi-class: `y_score`
    is (N, K) with one column per class (labels 0..K-1, sorted), scored one-vs-rest and averaged
    (`macro`, `weighted` by support, or None for per-class).
    """
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] > 1:
        if multi_class != "ovr":
            raise ValueError(f"multi_class must be 'ovr', got {multi_class!r}")
        if average not in ("macro", "weighted", None):
            raise ValueError(f"average must be 'macro', 'weighted' or None for multi-class AUC, got {average!r}")
        yt = _as_1d("y_true", y_true)
        if len(yt) != len(scores):
            raise ValueError(f"y_true and y_score must have the same length, got {len(yt)} and {len(scores)}")
        if not np.isfinite(scores).all():
            raise ValueError("y_score contains NaN or infinite values")
        classes = np.unique(yt)
        if len(classes) != scores.shape[1]:
            raise ValueError(f"y_score has {scores.shape[1]} columns but y_true has {len(classes)} classes")
        per_class = np.array([_binary_auc(yt == c, scores[:, k]) for k, c in enumerate(classes)])
        if average is None:
            return per_class
        weights = np.array([np.sum(yt == c) for c in classes], dtype=np.float64) if average == "weighted" else None
        return float(np.average(per_class, weights=weights))
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    yt, ys = _check_scores(y_true, scores)
    return _binary_auc(_binary_labels(yt, pos_label), ys)


# --------------------------------------------------------------------------- paired comparison


def mcnemar_exact_pvalue(b: int, c: int) -> float:
    r"""One-sided exact McNemar test for two classifiers scored on the same examples.

    `b` counts the examples only the first one gets right, `c` those only the second gets right
    (examples both get right or both get wrong say nothing about which is better). If the two were
    equally good, each of the $n = b + c$ discordant examples would fall either way with probability
    1/2, so the p-value of "the first is better" is
    $$P(X \ge b), \qquad X \sim \mathrm{Binomial}(n, 1/2), \qquad
    = 2^{-n} \sum_{k=b}^{n} \binom{n}{k}.$$
    Returns 1.0 when there is no discordant example.
    """
    import math

    for name, v in (("b", b), ("c", c)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ValueError(f"{name} must be a count (an integer >= 0), got {v!r}")
    n = int(b) + int(c)
    if n == 0:
        return 1.0
    # exact integer arithmetic; int / int rounds once, so large n neither overflows nor loses the tail
    return sum(math.comb(n, k) for k in range(int(b), n + 1)) / (1 << n)
