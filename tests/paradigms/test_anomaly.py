"""Reconstruction-error detector: score against torch's per-sample MSE, threshold quantile, training
on normal data separates a shifted cluster (ROC-AUC against scikit-learn's roc_auc_score)."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from _tolerance import assert_close_f32
from dlterms.methods.anomaly import ReconstructionDetector
from dlterms.models.autoencoder import Autoencoder


def test_score_is_per_sample_mse_and_threshold_quantile():
    torch.manual_seed(0)
    ae = Autoencoder(6, 2, hidden=(8,))
    det = ReconstructionDetector(ae)
    x = torch.randn(20, 6)
    with torch.no_grad():
        ref = torch.nn.functional.mse_loss(ae(x), x, reduction="none").mean(1)
    assert_close_f32(det.score(x), ref, n=6 + 2)  # the same forward pass; the mean of 6 squared errors
    tau = det.set_threshold(x, 0.9)
    assert tau == pytest.approx(float(torch.quantile(ref, 0.9)))
    assert int(det.predict(x).sum()) == 2  # 10 % of the normal data above the 90th percentile


def test_trained_on_normal_only_flags_off_manifold_points():
    torch.manual_seed(1)
    basis = torch.randn(2, 10)
    normal = torch.randn(300, 2) @ basis  # a 2-D subspace of R^10
    anomalies = torch.randn(50, 10)  # full-rank noise
    det = ReconstructionDetector(Autoencoder(10, 2, hidden=(16,)))
    det.fit(normal[:200], epochs=100, lr=3e-3, batch_size=100)
    s = torch.cat([det.score(normal[200:]), det.score(anomalies)]).numpy()
    y = [0] * 100 + [1] * 50
    assert roc_auc_score(y, s) > 0.95


def test_errors():
    det = ReconstructionDetector(Autoencoder(4, 2))
    with pytest.raises(ValueError, match="set_threshold"):
        det.predict(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="quantile"):
        det.set_threshold(torch.zeros(2, 4), 1.0)
    with pytest.raises(ValueError, match="x_normal"):
        det.fit(torch.zeros(0, 4))
