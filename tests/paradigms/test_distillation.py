"""Distillation loss against torch's kl_div and cross_entropy, and the T^2 gradient scaling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms.methods.distillation import distillation_loss, soft_targets


def test_matches_torch_kl_div_and_cross_entropy():
    torch.manual_seed(0)
    s, t, y = torch.randn(16, 10), torch.randn(16, 10) * 3, torch.randint(0, 10, (16,))
    for T, alpha in ((1.0, 0.5), (4.0, 0.9), (20.0, 1.0)):
        ref_soft = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T**2
        ref = alpha * ref_soft + (1 - alpha) * F.cross_entropy(s, y)
        # log-softmax and softmax over 10 classes, the KL sum over 10, the mean over 16 examples
        assert_close_f32(distillation_loss(s, t, y, T, alpha), ref, n=3 * 10 + 16 + 8)
    assert_close_f32(soft_targets(t, 2.0), F.softmax(t / 2.0, 1), n=10 + 4)


def test_t_squared_keeps_soft_gradients_on_the_same_scale():
    # d/dz_s of T^2 KL(p_t || p_s) = T (p_s - p_t) ~ (z_s - z_t) / K for large T: independent of T,
    # while the unscaled KL's gradient would shrink like 1/T^2
    torch.manual_seed(1)
    t, s0 = torch.randn(64, 10), torch.randn(64, 10)
    norms = []
    for T in (8.0, 16.0, 32.0):
        s = s0.clone().requires_grad_(True)
        distillation_loss(s, t, None, T, alpha=1.0).backward()
        norms.append(float(s.grad.norm()))
    assert max(norms) / min(norms) < 1.1


def test_zero_when_student_equals_teacher_and_errors():
    t = torch.randn(4, 5)
    assert float(distillation_loss(t.clone(), t, None, 3.0, 1.0)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(t, t, None, 1.0, 1.5)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(t, t, None, 0.0, 1.0)
    with pytest.raises(ValueError, match="target"):
        distillation_loss(t, t, None, 2.0, 0.5)
    with pytest.raises(ValueError, match="shape"):
        distillation_loss(t, torch.zeros(4, 6), None, 2.0, 1.0)
