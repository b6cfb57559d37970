"""dlterms.metrics against scikit-learn on hundreds of random cases with ties, hand-worked toys,
a brute-force AUC, and the errors for degenerate input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from dlterms import metrics as dm

TOL = 1e-12


def _random_labels(rng, n_classes):
    n = int(rng.integers(1, 60))
    yt = rng.integers(0, n_classes, n)
    # Predictions that agree with the truth part of the time, so every average is exercised.
    yp = np.where(rng.random(n) < 0.5, yt, rng.integers(0, n_classes, n))
    return yt, yp


def _sk(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


@pytest.mark.parametrize("seed", range(5))
def test_precision_recall_f1_match_sklearn_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    cases = 0
    for _ in range(120):
        n_classes = int(rng.integers(2, 5))
        yt, yp = _random_labels(rng, n_classes)
        averages = ["micro", "macro", "weighted", None]
        if len(np.union1d(yt, yp)) <= 2 and set(np.union1d(yt, yp)) <= {0, 1}:
            averages.append("binary")
        for avg in averages:
            for ours, ref in (
                (dm.precision_score, skm.precision_score),
                (dm.recall_score, skm.recall_score),
                (dm.f1_score, skm.f1_score),
            ):
                a = ours(yt, yp, average=avg, zero_division=0.0)
                b = _sk(ref, yt, yp, average=avg, zero_division=0.0)
                np.testing.assert_allclose(a, b, atol=TOL, rtol=0)
                cases += 1
    assert cases >= 500


@pytest.mark.parametrize("seed", range(5))
def test_roc_curve_and_auc_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(110):
        n = int(rng.integers(2, 80))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        levels = int(rng.integers(2, 12))  # few distinct scores -> many ties
        s = rng.integers(0, levels, n) / levels
        for drop in (True, False):
            a, b = dm.roc_curve(y, s, drop_intermediate=drop), skm.roc_curve(y, s, drop_intermediate=drop)
            for u, v in zip(a, b):
                np.testing.assert_allclose(u, v, atol=TOL, rtol=0)
        assert abs(dm.roc_auc_score(y, s) - skm.roc_auc_score(y, s)) <= TOL
        p, r, t = dm.precision_recall_curve(y, s)
        p2, r2, t2 = skm.precision_recall_curve(y, s)
        np.testing.assert_allclose(p, p2, atol=TOL)
        np.testing.assert_allclose(r, r2, atol=TOL)
        np.testing.assert_allclose(t, t2, atol=TOL)


def _brute_auc(y, s):
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / (len(pos) * len(neg))


def test_auc_equals_brute_force_pair_count():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 50))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = rng.integers(0, 6, n).astype(float)
        assert dm.roc_auc_score(y, s) == pytest.approx(_brute_auc(y, s), abs=TOL)


def test_multiclass_ovr_auc_matches_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(50):
        k = int(rng.integers(3, 6))
        y = np.r_[np.arange(k), rng.integers(0, k, 40)]
        logits = rng.normal(size=(len(y), k)) + np.eye(k)[y]
        prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        for avg in ("macro", "weighted"):
            assert dm.roc_auc_score(y, prob, average=avg) == pytest.approx(
                skm.roc_auc_score(y, prob, multi_class="ovr", average=avg), abs=1e-12
            )


def test_confusion_matrix_and_accuracies_match_sklearn():
    rng = np.random.default_rng(11)
    for _ in range(50):
        yt, yp = _random_labels(rng, 4)
        np.testing.assert_array_equal(dm.confusion_matrix(yt, yp), skm.confusion_matrix(yt, yp))
        assert dm.accuracy_score(yt, yp) == pytest.approx(skm.accuracy_score(yt, yp), abs=TOL)
        assert dm.balanced_accuracy_score(yt, yp) == pytest.approx(_sk(skm.balanced_accuracy_score, yt, yp), abs=TOL)


def test_hand_worked_toy():
    y = [1, 1, 1, 0, 0]
    p = [1, 0, 1, 1, 0]
    # TP=2, FP=1, FN=1
    assert dm.precision_score(y, p) == pytest.approx(2 / 3)
    assert dm.recall_score(y, p) == pytest.approx(2 / 3)
    assert dm.f1_score(y, p) == pytest.approx(2 / 3)
    # scores 0.9 0.8 0.4 for positives, 0.5 0.1 for negatives: 5 of 6 pairs ordered correctly
    assert dm.roc_auc_score(y, [0.9, 0.8, 0.4, 0.5, 0.1]) == pytest.approx(5 / 6)
    assert dm.auc([0, 1], [0, 1]) == pytest.approx(0.5)


def test_zero_division_value_is_used():
    assert dm.precision_score([1, 0], [0, 0]) == 0.0
    assert dm.precision_score([1, 0], [0, 0], zero_division=1.0) == 1.0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: dm.roc_auc_score([1, 1, 1], [0.1, 0.2, 0.3]), "Only one class present in y_true"),
        (lambda: dm.roc_auc_score([], []), "y_true is empty"),
        (lambda: dm.roc_auc_score([0, 1], [0.1, np.nan]), "y_score contains NaN at index 1"),
        (lambda: dm.roc_auc_score([0, 1, 1], [0.1, 0.2]), "same length, got 3 and 2"),
        (lambda: dm.f1_score([0, 1, 2], [0, 1, 2]), "average='binary' needs binary labels"),
        (lambda: dm.f1_score([0, 1], [0, 1], average="median"), "average must be one of"),
        (lambda: dm.roc_curve([0, 0, 0], [0.1, 0.2, 0.3]), "no positive examples"),
        (lambda: dm.roc_curve([1, 1, 1], [0.1, 0.2, 0.3]), "no negative examples"),
        (lambda: dm.roc_curve([0, 1, 2], [0.1, 0.2, 0.3]), "must be binary"),
        (lambda: dm.auc([0, 1, 0.5], [0, 1, 1]), "neither increasing nor decreasing"),
        (lambda: dm.precision_score([[0, 1]], [[0, 1]]), "y_true must be one-dimensional"),
    ],
)
def test_degenerate_input_gets_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("b, c", [(0, 0), (5, 0), (0, 5), (48, 19), (19, 48), (10, 10), (3000, 2900), (1, 1)])
def test_mcnemar_exact_pvalue_equals_scipy_binomtest(b, c):
    from scipy.stats import binomtest

    p = dm.mcnemar_exact_pvalue(b, c)
    ref = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5, alternative="greater").pvalue
    assert p == pytest.approx(ref, rel=1e-9, abs=1e-300)


def test_mcnemar_exact_pvalue_by_hand_and_bad_counts():
    assert dm.mcnemar_exact_pvalue(2, 0) == 0.25  # both discordant examples favour the first: (1/2)^2
    assert dm.mcnemar_exact_pvalue(1, 1) == 0.75  # P(X >= 1), X ~ Bin(2, 1/2)
    for bad in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match="b must be a count"):
            dm.mcnemar_exact_pvalue(bad, 3)
