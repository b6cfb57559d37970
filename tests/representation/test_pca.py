"""Our PCA against scikit-learn's: components up to sign, explained variance, transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA

from _tolerance import assert_close_f32
from dlterms.methods.pca import PCA


@pytest.fixture(scope="module")
def digits_x():
    return load_digits().data.astype(np.float64)


# Digits has constant pixels, so its last eigenvalues are 0 and those components arbitrary: k <= 40.
@pytest.mark.parametrize("k", [2, 10, 40])
def test_matches_sklearn(digits_x, k):
    ours = PCA(k).fit(digits_x)
    ref = SkPCA(k, svd_solver="full").fit(digits_x)
    C = ours.components_.numpy()
    # Up to sign: align each of our rows with the reference's.
    signs = np.sign(np.sum(C * ref.components_, axis=1))
    np.testing.assert_allclose(C * signs[:, None], ref.components_, atol=1e-8)
    np.testing.assert_allclose(ours.explained_variance_.numpy(), ref.explained_variance_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(
        ours.explained_variance_ratio_.numpy(), ref.explained_variance_ratio_, rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(ours.singular_values_.numpy(), ref.singular_values_, rtol=1e-8)
    Z = ours.transform(digits_x).numpy()
    np.testing.assert_allclose(Z * signs, ref.transform(digits_x), atol=1e-8)
    np.testing.assert_allclose(
        ours.inverse_transform(torch.from_numpy(Z)).numpy(), ref.inverse_transform(ref.transform(digits_x)), atol=1e-8
    )
    if k < 64:  # noise variance = mean of discarded eigenvalues
        np.testing.assert_allclose(float(ours.noise_variance_), ref.noise_variance_, rtol=1e-8)


def test_reconstruction_error_is_sum_of_discarded_eigenvalues(digits_x):
    n = len(digits_x)
    pca = PCA(5).fit(digits_x)
    X = torch.from_numpy(digits_x)
    err = (X - pca.inverse_transform(pca.transform(X))).pow(2).sum() / (n - 1)
    assert float(err) == pytest.approx(float(pca.all_explained_variance_[5:].sum()), rel=1e-10)


def test_projections_uncorrelated(digits_x):
    Z = PCA(10).fit_transform(digits_x)
    cov = torch.cov(Z.T)
    off = cov - torch.diag(torch.diag(cov))
    assert off.abs().max() < 1e-9


def test_full_rank_roundtrip_float32():
    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    pca = PCA().fit(x)
    assert pca.components_.dtype == torch.float32
    # the mean and covariance over 50 rows, the 7 x 7 eigenvectors, projecting on 7 and back on 7
    assert_close_f32(pca.inverse_transform(pca.transform(x)), x, n=2 * 50 + 49 + 2 * 7)


def test_bad_input():
    with pytest.raises(ValueError, match="n_components must be a positive integer"):
        PCA(0)
    with pytest.raises(ValueError, match="n_components must be <= min"):
        PCA(8).fit(torch.randn(10, 5))
    with pytest.raises(ValueError, match="X must be 2-D"):
        PCA(2).fit(torch.randn(10))
    with pytest.raises(ValueError, match="at least 2 samples"):
        PCA(1).fit(torch.randn(1, 3))
    with pytest.raises(RuntimeError, match="not fitted"):
        PCA(2).transform(torch.randn(3, 3))
    with pytest.raises(ValueError, match="features"):
        PCA(2).fit(torch.randn(10, 4)).transform(torch.randn(3, 5))
