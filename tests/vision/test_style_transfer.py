"""Gram matrix by einsum, losses by hand, and a few optimisation steps lowering the style loss."""

from __future__ import annotations

import pytest
import torch

from dlterms.methods.style_transfer import content_loss, gram_matrix, random_features, style_loss, stylize


def test_gram_matrix_against_einsum_and_position_invariance():
    f = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    ref = torch.einsum("bchw,bdhw->bcd", f, f) / (4 * 5 * 6)
    torch.testing.assert_close(gram_matrix(f), ref)
    # Gram matrices ignore where features are: a permutation of positions leaves G unchanged
    perm = torch.randperm(30)
    shuffled = f.reshape(2, 4, 30)[:, :, perm].reshape(2, 4, 5, 6)
    torch.testing.assert_close(gram_matrix(shuffled), gram_matrix(f))


def test_losses_by_hand():
    a, b = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    assert content_loss(a, b).item() == 1.0
    ga = gram_matrix(b)  # every entry 4 / 8 = 0.5
    assert torch.allclose(ga, torch.full((1, 2, 2), 0.5))
    assert style_loss([a], [ga], [2.0]).item() == pytest.approx(2.0 * 4 * 0.25)
    with pytest.raises(ValueError, match="2 feature maps but 1"):
        style_loss([a, a], [ga])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        gram_matrix(torch.zeros(2, 3))


def test_stylize_lowers_the_style_loss():
    torch.manual_seed(0)
    net = random_features((8, 16), generator=torch.Generator().manual_seed(0))
    c, s = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) ** 3
    r = stylize(net, c, s, steps=30, lr=0.05, style_weight=1e3)
    assert r.style_loss[-1] < 0.5 * r.style_loss[0]
    assert r.image.min() >= 0 and r.image.max() <= 1
    assert not any(p.requires_grad for p in net.parameters())
