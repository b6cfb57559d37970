"""Our Gaussian naive Bayes against scikit-learn's GaussianNB."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_iris
from sklearn.naive_bayes import GaussianNB as SkGNB

from dlterms.methods.naive_bayes import GaussianNB


@pytest.mark.parametrize("loader,smoothing", [(load_iris, 1e-9), (load_digits, 1e-9), (load_digits, 0.1)])
def test_matches_sklearn(loader, smoothing):
    d = loader()
    X, y = d.data.astype(np.float64), d.target
    ours = GaussianNB(smoothing).fit(torch.from_numpy(X), torch.from_numpy(y))
    ref = SkGNB(var_smoothing=smoothing).fit(X, y)
    np.testing.assert_allclose(ours.theta_.numpy(), ref.theta_, atol=1e-10)
    np.testing.assert_allclose(ours.var_.numpy(), ref.var_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.class_prior_.numpy(), ref.class_prior_, atol=1e-12)
    np.testing.assert_allclose(
        ours.predict_log_proba(torch.from_numpy(X)).numpy(), ref.predict_log_proba(X), rtol=1e-7, atol=1e-6
    )
    np.testing.assert_array_equal(ours.predict(torch.from_numpy(X)).numpy(), ref.predict(X))


def test_errors():
    with pytest.raises(ValueError, match="var_smoothing must be >= 0"):
        GaussianNB(-1.0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        GaussianNB().fit(torch.randn(5, 2), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="X must be"):
        GaussianNB().fit(torch.randn(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(RuntimeError, match="not fitted"):
        GaussianNB().predict(torch.randn(3, 2))
