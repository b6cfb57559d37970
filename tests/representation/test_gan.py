"""GAN losses against torch's BCE-with-logits, packing, the training loop on a 1-D Gaussian, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms.data.toy import assign_to_modes, ring_centers, ring_of_gaussians
from dlterms.models.gan import Discriminator, Generator, discriminator_loss, generator_loss, train_gan


def test_losses_match_bce_with_logits():
    g = torch.Generator().manual_seed(0)
    real, fake = 5 * torch.randn(64, generator=g), 5 * torch.randn(64, generator=g)
    ref_d = F.binary_cross_entropy_with_logits(real, torch.ones(64)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros(64)
    )
    assert_close_f32(discriminator_loss(real, fake), ref_d, n=2 * (64 + 4))  # two means over 64 examples
    assert_close_f32(generator_loss(fake), F.binary_cross_entropy_with_logits(fake, torch.ones(64)), n=64 + 4)
    assert_close_f32(
        generator_loss(fake, "saturating"), -F.binary_cross_entropy_with_logits(fake, torch.zeros(64)), n=64 + 4
    )


def test_non_saturating_gradient_is_larger_when_d_rejects_fakes():
    u = torch.tensor([-8.0], requires_grad=True)  # D(G(z)) = sigma(-8) ~ 3e-4: D rejects the fake
    (g_ns,) = torch.autograd.grad(generator_loss(u), u)
    (g_sat,) = torch.autograd.grad(generator_loss(u, "saturating"), u)
    assert abs(g_ns.item()) > 0.99 and abs(g_sat.item()) < 1e-3


def test_losses_are_finite_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(discriminator_loss(big, big)) and torch.isfinite(generator_loss(big))


def test_packing_shapes():
    D = Discriminator(2, (8,), pack=4)
    assert D(torch.randn(12, 2)).shape == (3,)
    with pytest.raises(ValueError, match="multiple of pack=4"):
        D(torch.randn(10, 2))


def test_training_moves_generator_to_the_data():
    torch.manual_seed(0)
    G, D = Generator(1, 1, (16,)), Discriminator(1, (16,))
    g = torch.Generator().manual_seed(1)
    train_gan(
        G,
        D,
        lambda n: 3.0 + 0.5 * torch.randn(n, 1, generator=g),
        steps=400,
        batch_size=64,
        lr=3e-3,
        generator=torch.Generator().manual_seed(2),
    )
    with torch.no_grad():
        x = G.sample(2000, torch.Generator().manual_seed(3))
    assert abs(float(x.mean()) - 3.0) < 0.3


def test_ring_data_and_mode_assignment():
    x, k = ring_of_gaussians(4000, 8, std=0.05, generator=torch.Generator().manual_seed(0))
    kk, ok = assign_to_modes(x, 8, std=0.05)
    assert (kk == k).all() and ok.float().mean() > 0.98  # 3 std in 2-D holds ~98.9 %
    # cos(pi / 2) in float32 is -4e-8, not 0
    assert_close_f32(ring_centers(4, 1.0)[1], torch.tensor([0.0, 1.0]), n=2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind must be 'non-saturating' or 'saturating'"):
        generator_loss(torch.zeros(2), "wasserstein")
    with pytest.raises(ValueError, match="pack must be a positive integer"):
        Discriminator(2, pack=0)
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        Generator(0)
    G, D = Generator(), Discriminator(pack=3)
    with pytest.raises(ValueError, match="batch_size=64 must be a multiple"):
        train_gan(G, D, lambda n: torch.randn(n, 2), steps=1, batch_size=64)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        train_gan(G, Discriminator(), lambda n: torch.randn(n, 2), steps=0)
    with pytest.raises(ValueError, match="std must be > 0"):
        ring_of_gaussians(10, std=0)


def test_training_loop_equals_the_plain_algorithm():
    """train_gan scores real and fake in one D call and differentiates G only; that is the same as
    Algorithm 1 written plainly (two D calls, a full backward), step for step (float64)."""
    from dlterms.optim import Adam

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        runs = []
        for plain in (False, True):
            torch.manual_seed(0)
            G, D = Generator(2, 2, (8,)), Discriminator(2, (8,), pack=2)
            data, noise = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)

            def real(n, data=data):
                return torch.randn(n, 2, generator=data) + 1.0

            if not plain:
                hist = train_gan(G, D, real, steps=20, batch_size=8, lr=1e-2, generator=noise)
                runs.append((hist.d_loss, [p.detach().clone() for p in G.parameters()]))
                continue
            opt_g, opt_d = (
                Adam(G.parameters(), lr=1e-2, betas=(0.5, 0.999)),
                Adam(D.parameters(), lr=1e-2, betas=(0.5, 0.999)),
            )
            d_losses = []
            for _ in range(20):
                r = real(8)
                with torch.no_grad():
                    f = G.sample(8, noise)
                opt_d.zero_grad()
                ld = discriminator_loss(D(r), D(f))
                ld.backward()
                opt_d.step()
                opt_g.zero_grad()
                generator_loss(D(G.sample(8, noise))).backward()
                opt_g.step()
                d_losses.append(float(ld.detach()))
            runs.append((d_losses, [p.detach().clone() for p in G.parameters()]))
        torch.testing.assert_close(torch.tensor(runs[0][0]), torch.tensor(runs[1][0]), rtol=0, atol=1e-12)
        for a, b in zip(runs[0][1], runs[1][1], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    finally:
        torch.set_default_dtype(old)


def test_experiment_config_rejects_bad_values():
    from dlterms.experiments.representation.gan import Config

    assert Config().hidden == (256, 256, 256) and Config().d_lr > Config().lr  # D learns faster than G
    with pytest.raises(ValueError, match="final_lr_fraction"):
        Config(final_lr_fraction=0.0)
    with pytest.raises(ValueError, match="pack"):
        Config(pack=3)  # 128 is not a multiple of 3
    with pytest.raises(ValueError, match="d_lr"):
        Config(d_lr=-1e-3)
