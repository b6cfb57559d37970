"""OOD scores against references: torch's softmax and logsumexp, scikit-learn's EmpiricalCovariance
Mahalanobis distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.covariance import EmpiricalCovariance

from _tolerance import assert_close_f32
from dlterms.methods.ood import MahalanobisScorer, energy_score, max_softmax_score


def test_msp_and_energy_match_torch():
    torch.manual_seed(0)
    logits = torch.randn(50, 7) * 5
    assert_close_f32(max_softmax_score(logits), torch.softmax(logits, 1).max(1).values, n=7 + 4)
    for T in (1.0, 0.5, 3.0):
        assert_close_f32(energy_score(logits, T), T * torch.logsumexp(logits / T, 1), n=7 + 4)
    big = torch.tensor([[1000.0, 0.0]])
    assert torch.isfinite(energy_score(big)).all()  # stable for large logits


def test_mahalanobis_matches_sklearn():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 4)) * 3
    y = rng.integers(0, 3, 300)
    a = rng.normal(size=(4, 4))
    feats = means[y] + rng.normal(size=(300, 4)) @ a
    scorer = MahalanobisScorer(eps=0.0).fit(torch.tensor(feats), torch.tensor(y))
    mu = np.stack([feats[y == c].mean(0) for c in range(3)])
    ref_cov = EmpiricalCovariance(assume_centered=True).fit(feats - mu[y])
    x = rng.normal(size=(20, 4)) * 4
    ref = np.stack([ref_cov.mahalanobis(x - mu[c]) for c in range(3)], 1)  # squared distances
    np.testing.assert_allclose(scorer.distances(torch.tensor(x)).numpy(), ref, rtol=1e-8)
    # float32 scores of float64 distances (4 x 4 quadratic forms): relative to each score
    assert_close_f32(scorer.score(torch.tensor(x)), -ref.min(1), n=16 + 4, scale=np.abs(ref.min(1)))


def test_errors():
    with pytest.raises(ValueError, match="logits"):
        max_softmax_score(torch.zeros(3))
    with pytest.raises(ValueError, match="temperature"):
        energy_score(torch.zeros(2, 3), 0.0)
    with pytest.raises(ValueError, match="fit"):
        MahalanobisScorer().score(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="features"):
        MahalanobisScorer().fit(torch.zeros(3), torch.zeros(3))
