"""Autoencoders: a linear one reaches PCA's error (Baldi & Hornik), corruption, training mode, errors."""

from __future__ import annotations

import pytest
import torch

from dlterms.losses import mse_loss
from dlterms.methods.pca import PCA
from dlterms.models.autoencoder import Autoencoder, DenoisingAutoencoder, corrupt


def test_linear_autoencoder_reaches_pca_error():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g) @ torch.randn(6, 10, generator=g)  # rank-6 data in 10-D
    x = x + 0.05 * torch.randn(300, 10, generator=g)
    pca = PCA(3).fit(x)
    err_pca = float(mse_loss(pca.inverse_transform(pca.transform(x)), x))
    torch.manual_seed(0)
    ae = Autoencoder(10, 3, hidden=())
    opt = torch.optim.Adam(ae.parameters(), lr=2e-2)
    for _ in range(600):
        opt.zero_grad()
        loss = mse_loss(ae(x), x)
        loss.backward()
        opt.step()
    with torch.no_grad():
        err_ae = float(mse_loss(ae(x), x))
    assert err_ae >= err_pca * (1 - 1e-4)  # PCA is the best linear rank-3 reconstruction
    assert err_ae == pytest.approx(err_pca, rel=0.02)


def test_shapes_and_code():
    ae = Autoencoder(64, 8, hidden=(32, 16), output_activation="sigmoid")
    x = torch.rand(5, 64)
    assert ae.encode(x).shape == (5, 8)
    out = ae(x)
    assert out.shape == (5, 64) and (out >= 0).all() and (out <= 1).all()
    assert "code_size=8" in repr(ae)


def test_corrupt():
    x = torch.ones(2000, 10)
    g = torch.Generator().manual_seed(0)
    m = corrupt(x, "masking", 0.3, g)
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs(float((m == 0).float().mean()) - 0.3) < 0.01
    n = corrupt(x, "gaussian", 0.5, g)
    assert abs(float((n - x).std()) - 0.5) < 0.01


def test_denoising_corrupts_only_in_training():
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(10, 3, noise="gaussian", noise_level=1.0)
    x = torch.rand(4, 10)
    dae.eval()
    torch.testing.assert_close(dae(x), dae.decode(dae.encode(x)))
    dae.train()
    assert not torch.allclose(dae(x), dae.decode(dae.encode(x)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="code_size must be a positive integer"):
        Autoencoder(10, 0)
    with pytest.raises(ValueError, match="noise must be 'gaussian' or 'masking'"):
        DenoisingAutoencoder(10, 2, noise="salt")
    with pytest.raises(ValueError, match="level must be >= 0"):
        corrupt(torch.ones(3), "masking", 1.0)
