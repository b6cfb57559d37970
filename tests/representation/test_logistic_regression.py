"""Logistic regression fitted by Newton's method: scikit-learn's objective and probabilities, batching,
sample weights, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.preprocessing import StandardScaler

from dlterms.methods.logistic_regression import (
    LogisticRegression,
    fit_logistic_regression,
    logistic_regression_proba,
)


def _objective(model, x, y, c):
    """scikit-learn's objective C sum -log p(y|x) + 1/2 ||W||^2 for a fitted (ours or sklearn) model."""
    p = np.asarray(model.predict_proba(x), dtype=np.float64)
    return c * -np.log(p[np.arange(len(y)), y]).sum() + 0.5 * (np.asarray(model.coef_, dtype=np.float64) ** 2).sum()


@pytest.mark.parametrize("loader", [load_iris, load_breast_cancer])
@pytest.mark.parametrize("c", [0.01, 1.0, 30.0])
def test_matches_sklearn(loader, c):
    x, y = loader(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    ours = LogisticRegression(C=c).fit(x, y)
    ref = SkLogisticRegression(C=c, tol=1e-12, max_iter=100_000).fit(x, y)
    # lbfgs stops near the optimum; the objective is strictly convex, so both land within ~1e-6
    np.testing.assert_allclose(ours.predict_proba(x).numpy(), ref.predict_proba(x), atol=1e-5)
    # ours is the exact Newton optimum: its objective is not above scikit-learn's
    assert _objective(ours, x, y, c) <= _objective(ref, x, y, c) + 1e-9
    assert ours.coef_.shape == ref.coef_.shape
    assert ours.score(x, y) == pytest.approx(ref.score(x, y), abs=1 / len(y))


def test_batched_equals_single_and_zero_weight_removes_rows():
    x, y = load_iris(return_X_y=True)
    x = torch.as_tensor(StandardScaler().fit_transform(x))
    y = torch.as_tensor(y)
    g = torch.Generator().manual_seed(0)
    rows = [torch.randperm(150, generator=g)[:40] for _ in range(3)]
    w = torch.zeros(3, 150)
    for k, r in enumerate(rows):
        w[k, r] = 1.0
    cs = torch.tensor([0.1, 1.0, 10.0])
    coef, b = fit_logistic_regression(x.expand(3, -1, -1), y.expand(3, -1), 3, cs, w)
    for k, r in enumerate(rows):
        c1, b1 = fit_logistic_regression(x[r], y[r], 3, float(cs[k]))
        torch.testing.assert_close(coef[k], c1, atol=1e-8, rtol=0)
        torch.testing.assert_close(b[k], b1, atol=1e-8, rtol=0)
    p = logistic_regression_proba(coef, b, x)
    assert p.shape == (3, 150, 3)
    torch.testing.assert_close(p.sum(-1), torch.ones(3, 150, dtype=torch.float64))


def test_errors():
    x, y = torch.randn(10, 2), torch.tensor([0, 1] * 5)
    with pytest.raises(ValueError, match="C must be > 0"):
        LogisticRegression(C=0.0)
    with pytest.raises(ValueError, match="n_classes"):
        fit_logistic_regression(x, y, 1)
    with pytest.raises(ValueError, match="labels must lie"):
        fit_logistic_regression(x, y + 1, 2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegression().fit(x, torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="sample_weight"):
        fit_logistic_regression(x, y, 2, sample_weight=-torch.ones(10))
