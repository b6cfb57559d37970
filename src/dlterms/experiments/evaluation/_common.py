"""Shared set-ups of the evaluation experiments: random label/score cases with ties (compared with
scikit-learn), an imbalanced classification problem with a trained classifier's scores, and MNIST-1D's
ten one-vs-rest problems (about 10 % positives each) with a logistic regression's validation and test
scores."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

N_CASES = 520  # docs/experiments.md asks for >= 500 random cases


def random_label_cases(rng: np.random.Generator, n_cases: int = N_CASES):
    """(y_true, y_pred, n_classes) triples: 2-4 classes, lengths 1-60, half the predictions correct."""
    for _ in range(n_cases):
        k = int(rng.integers(2, 5))
        n = int(rng.integers(1, 60))
        yt = rng.integers(0, k, n)
        yp = np.where(rng.random(n) < 0.5, yt, rng.integers(0, k, n))
        yield yt, yp, k


def random_score_cases(rng: np.random.Generator, n_cases: int = N_CASES):
    """(y_true, y_score) pairs with both classes present and few distinct score levels (many ties)."""
    for _ in range(n_cases):
        n = int(rng.integers(2, 80))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        levels = int(rng.integers(2, 12))
        yield y, rng.integers(0, levels, n) / levels


def max_diff_vs_sklearn(ours, reference, rng: np.random.Generator) -> tuple[int, float]:
    """Compare a label metric with scikit-learn's over N_CASES random cases, the averaging mode
    taking turns (micro, macro, weighted, per-class, and binary where the labels allow it).
    Returns (n cases, max |difference|)."""
    worst, count = 0.0, 0
    averages = ["micro", "macro", "weighted", None, "binary"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns on zero division; both return 0.0
        for i, (yt, yp, _) in enumerate(random_label_cases(rng)):
            avg = averages[i % len(averages)]
            if avg == "binary":
                yt, yp = yt % 2, yp % 2  # fold into two classes
            a = np.asarray(ours(yt, yp, average=avg, zero_division=0.0), dtype=float)
            b = np.asarray(reference(yt, yp, average=avg, zero_division=0.0), dtype=float)
            worst = max(worst, float(np.max(np.abs(a - b))))
            count += 1
    return count, worst


@dataclass
class Imbalanced:
    y_test: np.ndarray
    scores: np.ndarray  # a trained classifier's probability of the minority class
    minority_fraction: float


def imbalanced_problem(seed: int, minority: float = 0.05, n: int = 4000, hard: bool = True) -> Imbalanced:
    """A 95/5 problem (scikit-learn's make_classification) and a logistic regression's test scores.

    hard=True overlaps the classes (the minority is hard to find); hard=False separates them well
    enough that a linear model finds most of the minority.
    """
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    if hard:
        shape = dict(n_informative=3, n_redundant=2, class_sep=0.6, flip_y=0.01)
    else:
        shape = dict(n_informative=5, n_redundant=0, class_sep=1.0, flip_y=0.0, n_clusters_per_class=1)
    x, y = make_classification(n_samples=n, n_features=10, weights=[1 - minority, minority], random_state=seed, **shape)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    model = LogisticRegression(max_iter=1000).fit(xtr, ytr)
    return Imbalanced(yte, model.predict_proba(xte)[:, 1], float(y.mean()))


def real_scores(seed: int, c: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """Breast-cancer test labels and a logistic regression's scores (a real, imperfect classifier;
    `c` is its inverse L2 strength)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    # A strongly regularised model, so the classes overlap and the trade-offs are visible.
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(xtr, ytr)
    return yte, model.predict_proba(xte)[:, 1]


@dataclass
class OneVsRest:
    """Scores of one binary classifier per MNIST-1D digit (that digit = positive, the other nine =
    negative): labels and P(positive) on validation and test, each (10, n)."""

    y_val: np.ndarray
    s_val: np.ndarray
    y_test: np.ndarray
    s_test: np.ndarray


def mnist1d_one_vs_rest(seed: int, c: float = 1.0) -> OneVsRest:
    """MNIST-1D (published 4 000/1 000 split), each digit against the other nine.

    3 000 training signals (a stratified split seeded by `seed`) train ten L2 logistic regressions
    (inverse regularisation strength `c`, by default 1 as in scikit-learn; our Newton fit), digit k
    against the rest; the other 1 000 training signals are the validation set and the 1 000 test
    signals the test set. A linear model is weak on MNIST-1D (32 % ten-way accuracy in the paper), so
    several digits are hard to find: real, imbalanced, imperfect scores."""
    import torch

    from dlterms.data.datasets import mnist1d, train_val_split
    from dlterms.methods.logistic_regression import fit_logistic_regression, logistic_regression_proba

    d = mnist1d()
    xtr, ytr, xva, yva = train_val_split(d.x_train, d.y_train, 0.25, seed=seed)
    digits = torch.arange(10)[:, None]
    coef, b = fit_logistic_regression(xtr.expand(10, -1, -1), (ytr[None] == digits).long(), 2, c)
    s_val = logistic_regression_proba(coef, b, xva)[..., 1].numpy()  # (10, n_val): P(digit k | x)
    s_test = logistic_regression_proba(coef, b, d.x_test)[..., 1].numpy()  # (10, n_test)
    return OneVsRest((yva[None] == digits).long().numpy(), s_val, (d.y_test[None] == digits).long().numpy(), s_test)
