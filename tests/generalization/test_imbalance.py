"""Class weights against scikit-learn, focal loss against cross-entropy and a hand-written formula, oversampler."""

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from _tolerance import assert_close_f32
from dlterms.data.samplers import RandomOversampler
from dlterms.methods.imbalance import FocalLoss, class_weights, focal_loss


def test_class_weights_match_sklearn():
    y = torch.tensor([0] * 50 + [1] * 5 + [2] * 20)
    ref = compute_class_weight("balanced", classes=np.arange(3), y=y.numpy())
    assert_close_f32(class_weights(y), ref, n=2)  # n / (k * count): two roundings
    assert class_weights(y)[y].sum().item() == pytest.approx(len(y))


def test_focal_gamma0_is_cross_entropy_and_alpha_is_weight():
    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(32, 5, generator=g) * 3, torch.randint(5, (32,), generator=g)
    # log-softmax over 5 classes, then the mean over 32 examples
    assert_close_f32(focal_loss(z, t, gamma=0.0), torch.nn.functional.cross_entropy(z, t), n=8 + 32)
    a = torch.rand(5, generator=g)
    ref = torch.nn.functional.cross_entropy(z, t, weight=a, reduction="none")  # w_y * CE, per example
    assert_close_f32(focal_loss(z, t, gamma=0.0, alpha=a, reduction="none"), ref, n=8 + 1)


@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_focal_matches_formula_values_and_gradients(gamma):
    g = torch.Generator().manual_seed(1)
    z = (torch.randn(16, 4, generator=g) * 2).double().requires_grad_()
    t = torch.randint(4, (16,), generator=g)
    z2 = z.detach().clone().requires_grad_()
    ours = focal_loss(z, t, gamma=gamma)
    p = torch.softmax(z2, 1)[torch.arange(16), t]
    ref = (-((1 - p) ** gamma) * torch.log(p)).mean()
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(z.grad, z2.grad, rtol=1e-8, atol=1e-10)


def test_focal_down_weights_easy_examples():
    z = torch.tensor([[4.0, 0.0], [0.2, 0.0]])  # an easy and a hard example of class 0
    t = torch.tensor([0, 0])
    ce = torch.nn.functional.cross_entropy(z, t, reduction="none")
    fl = focal_loss(z, t, gamma=2.0, reduction="none")
    assert (fl / ce)[0] < 0.001 < (fl / ce)[1]
    assert FocalLoss(2.0)(z, t).item() == pytest.approx(fl.mean().item())


def test_oversampler_balances_and_keeps_every_example():
    y = torch.tensor([0] * 30 + [1] * 4 + [2] * 10)
    idx = RandomOversampler(y, seed=3).indices()
    assert torch.bincount(y[idx]).tolist() == [30, 30, 30]
    assert set(idx.tolist()) == set(range(len(y)))
    assert len(idx) == len(RandomOversampler(y))
    assert torch.equal(idx, RandomOversampler(y, seed=3).indices())


def test_errors():
    with pytest.raises(ValueError, match="classes \\[1\\] have no examples"):
        class_weights(torch.tensor([0, 2, 2]))
    with pytest.raises(ValueError, match="integer class labels"):
        class_weights(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        focal_loss(torch.zeros(2, 2), torch.tensor([0, 1]), gamma=-1)
    with pytest.raises(ValueError, match="alpha must have shape"):
        focal_loss(torch.zeros(2, 2), torch.tensor([0, 1]), alpha=torch.ones(3))
    with pytest.raises(ValueError, match="integer class labels"):
        RandomOversampler(torch.zeros(3))
