"""FGSM and PGD: by hand on a linear model, the epsilon-ball, and that attacks raise the loss."""

from __future__ import annotations

import pytest
import torch

from dlterms.losses import cross_entropy
from dlterms.methods.adversarial import adversarial_forward, fgsm, pgd, robust_accuracy


def _linear():
    torch.manual_seed(0)
    m = torch.nn.Linear(6, 3)
    return m, torch.rand(10, 6), torch.randint(0, 3, (10,))


def test_fgsm_is_the_signed_input_gradient_step():
    m, x, y = _linear()
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(m(xr), y), xr)
    ref = (x + 0.1 * g.sign()).clamp(0, 1)
    torch.testing.assert_close(fgsm(m, x, y, 0.1), ref)
    torch.testing.assert_close(fgsm(m, x, y, 0.1, clip=None), x + 0.1 * g.sign())


def test_pgd_stays_in_the_ball_and_beats_fgsm():
    m, x, y = _linear()
    xa = pgd(m, x, y, eps=0.05, steps=20, generator=torch.Generator().manual_seed(0))
    assert (xa - x).abs().max() <= 0.05 + 1e-7 and xa.min() >= 0 and xa.max() <= 1
    loss = lambda z: cross_entropy(m(z), y).item()  # noqa: E731
    assert loss(xa) > loss(x)
    assert loss(xa) >= loss(fgsm(m, x, y, 0.05)) - 1e-6  # for a linear model both reach the corner
    # one step from no random start with alpha = eps is FGSM
    torch.testing.assert_close(pgd(m, x, y, eps=0.05, steps=1, alpha=0.05, random_start=False), fgsm(m, x, y, 0.05))


def test_adversarial_forward_and_robust_accuracy():
    m, x, y = _linear()
    fwd = adversarial_forward(fgsm, eps=0.1)
    torch.testing.assert_close(fwd(m, x, y), m(fgsm(m, x, y, 0.1)))
    assert robust_accuracy(m, x, y, fgsm, eps=0.5) <= robust_accuracy(m, x, y, fgsm, eps=0.0)


def test_errors():
    m, x, y = _linear()
    with pytest.raises(ValueError, match="eps must be >= 0"):
        fgsm(m, x, y, -0.1)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        pgd(m, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="clip must be"):
        fgsm(m, x, y, 0.1, clip=(1.0, 0.0))
