"""Capsules: squash, routing against a loop implementation, margin loss by hand."""

from __future__ import annotations

import math

import pytest
import torch

from dlterms.models.cnn import CapsNet
from dlterms.nn.capsules import PrimaryCapsules, RoutingCapsules, dynamic_routing, margin_loss, squash


def test_squash_keeps_direction_and_maps_length():
    s = torch.randn(5, 7, dtype=torch.float64) * 3
    v = squash(s)
    n = s.norm(dim=-1)
    torch.testing.assert_close(v.norm(dim=-1), n**2 / (1 + n**2), atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(v / v.norm(dim=-1, keepdim=True), s / n.unsqueeze(-1))
    assert squash(torch.zeros(3)).abs().max() == 0


def _routing_loop(u_hat, iterations):
    bsz, n_in, n_out, _ = u_hat.shape
    b = torch.zeros(bsz, n_in, n_out, dtype=u_hat.dtype)
    for r in range(iterations):
        c = torch.softmax(b, dim=2)
        v = torch.stack(
            [squash(sum(c[:, i, j, None] * u_hat[:, i, j] for i in range(n_in))) for j in range(n_out)], dim=1
        )
        if r < iterations - 1:
            for i in range(n_in):
                for j in range(n_out):
                    b[:, i, j] += (u_hat[:, i, j] * v[:, j]).sum(-1)
    return v, c


def test_routing_matches_loop_and_einsum_matches_matmul():
    torch.manual_seed(0)
    u_hat = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    for it in (1, 3):
        v, c = dynamic_routing(u_hat, it)
        v_ref, c_ref = _routing_loop(u_hat, it)
        torch.testing.assert_close(v, v_ref)
        torch.testing.assert_close(c, c_ref)
    layer = RoutingCapsules(6, 4, 3, 5).double()
    u = torch.randn(2, 6, 4, dtype=torch.float64)
    u_hat = (layer.weight.unsqueeze(0) @ u[:, :, None, :, None]).squeeze(-1)  # broadcast matmul
    torch.testing.assert_close(layer(u), dynamic_routing(u_hat, 3)[0])


def test_primary_capsules_and_capsnet_shapes():
    p = PrimaryCapsules(4, capsule_types=3, capsule_dim=5, kernel_size=3, stride=2, padding=1)
    u = p(torch.randn(2, 4, 8, 8))
    assert u.shape == (2, 3 * 4 * 4, 5) and (u.norm(dim=-1) < 1).all()
    assert CapsNet()(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_margin_loss_by_hand():
    lengths = torch.tensor([[0.95, 0.3, 0.05], [0.5, 0.05, 0.2]])
    target = torch.tensor([0, 2])
    # image 1: 0 + 0.5*(0.3-0.1)^2 + 0; image 2: 0.5*(0.5-0.1)^2 + 0 + (0.9-0.2)^2
    expected = ((0.5 * 0.2**2) + (0.5 * 0.4**2 + 0.7**2)) / 2
    assert math.isclose(margin_loss(lengths, target).item(), expected, rel_tol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="iterations must be a positive integer"):
        dynamic_routing(torch.zeros(1, 2, 3, 4), 0)
    with pytest.raises(ValueError, match=r"expected lower capsules \(B, 6, 4\)"):
        RoutingCapsules(6, 4, 3, 5)(torch.zeros(1, 5, 4))
    with pytest.raises(ValueError, match="lengths must be"):
        margin_loss(torch.zeros(3), torch.zeros(3, dtype=torch.long))
