"""Residual blocks: y = x + F(x), the plain counterpart, and the identity gradient path."""

from __future__ import annotations

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.nn import Linear
from dlterms.nn.residual import ResidualBlock, ResidualMLP


def test_block_is_input_plus_body():
    torch.manual_seed(0)
    blk = ResidualBlock(6, activation="tanh", n_layers=2)
    x = torch.randn(4, 6)
    l1, l2 = [m for m in blk.body if isinstance(m, Linear)]
    ref = x + (torch.tanh(torch.tanh(x) @ l1.weight.T + l1.bias) @ l2.weight.T + l2.bias)
    assert_close_f32(blk(x), ref, n=2 * (6 + 2) + 1)  # two layers of 6-term sums and tanh, and the skip
    blk.residual = False
    assert_close_f32(blk(x), ref - x, n=2 * (6 + 2) + 1)


def test_jacobian_is_identity_plus_body_jacobian():
    torch.manual_seed(1)
    blk = ResidualBlock(5, n_layers=1, activation="tanh").double()
    x = torch.randn(5, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(blk, x)
    Jf = torch.autograd.functional.jacobian(blk.body, x)
    assert torch.allclose(J, torch.eye(5, dtype=torch.float64) + Jf, atol=1e-12)


def test_residual_mlp_shapes_and_plain_counterpart():
    net = ResidualMLP(10, 16, 3, n_blocks=4, n_layers=2, residual=False)
    assert net(torch.randn(7, 10)).shape == (7, 3)
    assert len(net.linear_layers) == 4 * 2 + 2
    assert "residual=False" in repr(net)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(features=0), "features must be a positive integer, got 0"),
        (dict(features=4, n_layers=0), "n_layers must be a positive integer, got 0"),
    ],
)
def test_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        ResidualBlock(**kw)
    with pytest.raises(ValueError, match="n_blocks must be a non-negative integer, got -1"):
        ResidualMLP(2, 4, 2, n_blocks=-1)
