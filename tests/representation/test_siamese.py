"""Siamese network: one set of weights, symmetric distance, pairs."""

from __future__ import annotations

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.models.siamese import SiameseNetwork, make_pairs


def test_shared_weights_symmetric_distance():
    torch.manual_seed(0)
    net = SiameseNetwork(10, embedding_dim=4, hidden=(8,))
    x1, x2 = torch.randn(6, 10), torch.randn(6, 10)
    assert net.distance(x1, x1).abs().max() == 0
    torch.testing.assert_close(net.distance(x1, x2), net.distance(x2, x1))
    e1, e2 = net(x1, x2)
    torch.testing.assert_close(e1, net.encoder(x1))  # both branches are the same module
    torch.testing.assert_close(e2, net.encoder(x2))
    assert sum(p.numel() for p in net.parameters()) == 10 * 8 + 8 + 8 * 4 + 4


def test_normalized_embeddings():
    net = SiameseNetwork(5, embedding_dim=3, normalize=True)
    e, _ = net(torch.randn(4, 5), torch.randn(4, 5))
    assert_close_f32(e.norm(dim=1), torch.ones(4), n=2 * 3 + 2)  # normalised, then the norm of 3 values


def test_make_pairs_balanced():
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    i, j, same = make_pairs(y, 100, torch.Generator().manual_seed(0))
    assert int(same.sum()) == 50
    assert ((y[i] == y[j]).long() == same).all() and (i[same == 1] != j[same == 1]).all()


def test_errors():
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        SiameseNetwork()
    with pytest.raises(ValueError, match="n_pairs must be >= 2"):
        make_pairs(torch.tensor([0, 1]), 1)
