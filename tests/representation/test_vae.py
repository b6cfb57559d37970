"""VAE pieces against torch.distributions and torch's BCE, and the reparameterisation's gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from _tolerance import assert_close_f32
from dlterms.models.vae import VAE, elbo, gaussian_kl, negative_elbo


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    assert_close_f32(gaussian_kl(mu, logvar), ref, n=5 + 8)  # a sum of 5 terms of a few operations each


def test_elbo_matches_bce_minus_kl():
    g = torch.Generator().manual_seed(1)
    logits, x = 4 * torch.randn(6, 64, generator=g), torch.rand(6, 64, generator=g)
    mu, logvar = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    # BCE with logits summed over 64 pixels, the KL over 3 dimensions
    assert_close_f32(elbo((logits, mu, logvar), x), rec - gaussian_kl(mu, logvar), n=64 + 3 + 8)


def test_reparameterisation_gradient():
    vae = VAE(4, latent_dim=2, hidden=(8,))
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.2, -0.4]], requires_grad=True)
    g = torch.Generator().manual_seed(3)
    z = vae.reparameterize(mu, logvar, g)
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z, mu + (0.5 * logvar).exp() * eps)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))
    torch.testing.assert_close(logvar.grad, 0.5 * (0.5 * logvar.detach()).exp() * eps)


def test_training_raises_elbo():
    torch.manual_seed(0)
    x = (torch.rand(256, 16) > 0.5).float()
    vae = VAE(16, latent_dim=2, hidden=(32,))
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
    first = None
    for _ in range(100):
        opt.zero_grad()
        loss = negative_elbo(vae(x), x)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < first
    assert vae.sample(5).shape == (5, 16)


def test_bad_arguments():
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        VAE(16, latent_dim=0)
