"""ECE and reliability bins: hand-worked cases, a brute-force loop, and sklearn's calibration_curve."""

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve

from dlterms.methods.calibration import expected_calibration_error, reliability_bins


def _brute_ece(conf, hit, m):
    n, total = len(conf), 0.0
    for b in range(m):
        lo, hi = b / m, (b + 1) / m
        sel = [i for i in range(n) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0)]
        if sel:
            total += len(sel) / n * abs(np.mean([hit[i] for i in sel]) - np.mean([conf[i] for i in sel]))
    return total


def test_hand_worked():
    # two predictions at 0.9 (one right), two at 0.6 (both right), 2 bins of width 0.5
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 1, 0])
    # one bin (0.5, 1]: acc 3/4, conf 0.75 -> ECE 0
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.0)
    # ten bins: (0.5,0.6] acc 1 conf 0.6; (0.8,0.9] acc 0.5 conf 0.9 -> 0.5*0.4 + 0.5*0.4
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.4)


@pytest.mark.parametrize("m", [1, 5, 15])
def test_matches_brute_force(m):
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(300, 4, generator=g) * 2, 1)
    labels = torch.randint(4, (300,), generator=g)
    conf, pred = probs.max(1)
    ours = expected_calibration_error(probs, labels, m)
    assert ours == pytest.approx(_brute_ece(conf.tolist(), (pred == labels).float().tolist(), m), abs=1e-12)


def test_reliability_matches_sklearn_calibration_curve():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p**2).astype(int)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=8, strategy="uniform")
    bins = reliability_bins(torch.tensor(p), torch.tensor(y), n_bins=8, right=False)
    keep = bins.count > 0
    np.testing.assert_allclose(bins.accuracy[keep].numpy(), prob_true, atol=1e-12)
    np.testing.assert_allclose(bins.confidence[keep].numpy(), prob_pred, atol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="n_bins must be >= 1"):
        reliability_bins(torch.rand(3), torch.ones(3), 0)
    with pytest.raises(ValueError, match=r"confidences must lie in \[0, 1\]"):
        reliability_bins(torch.tensor([1.5]), torch.ones(1))
    with pytest.raises(ValueError, match="expected probabilities"):
        expected_calibration_error(torch.rand(3), torch.ones(3))
