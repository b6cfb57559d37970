"""affine_grid and grid_sample against torch's (values and gradients), both align_corners settings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms.nn.spatial_transformer import SpatialTransformer, affine_grid, grid_sample, identity_theta, rotation_theta


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("case", range(6))
def test_affine_grid_and_grid_sample_match_torch(align, case):
    g = torch.Generator().manual_seed(case)
    b, c = 1 + case % 3, 1 + case % 2
    h, w, ho, wo = (int(v) for v in torch.randint(2, 12, (4,), generator=g))
    theta = identity_theta(b, torch.float64) + 0.6 * torch.randn(b, 2, 3, generator=g, dtype=torch.float64)
    theta.requires_grad_(True)
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    grid = affine_grid(theta, (b, c, ho, wo), align_corners=align)
    ref_grid = F.affine_grid(theta, [b, c, ho, wo], align_corners=align)
    torch.testing.assert_close(grid, ref_grid, atol=1e-12, rtol=1e-12)
    y = grid_sample(x, grid, align_corners=align)
    ref = F.grid_sample(x, ref_grid, mode="bilinear", padding_mode="zeros", align_corners=align)
    torch.testing.assert_close(y, ref, atol=1e-10, rtol=1e-10)
    gy = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    ours = torch.autograd.grad(y, (x, theta), gy)
    theirs = torch.autograd.grad(ref, (x, theta), gy)
    for a, r in zip(ours, theirs):
        torch.testing.assert_close(a, r, atol=1e-8, rtol=1e-8)


def test_identity_and_rotation():
    x = torch.randn(2, 3, 5, 7)
    y = grid_sample(x, affine_grid(identity_theta(2), x.shape))
    assert_close_f32(y, x, n=4)  # float32 rule: the grid normalised and back, the bilinear weights
    # a 90-degree rotation of a square image is rot90 (align_corners=True puts centres on the grid)
    sq = torch.randn(1, 1, 6, 6)
    r = grid_sample(sq, affine_grid(rotation_theta(torch.tensor([torch.pi / 2])), sq.shape, True), True)
    assert_close_f32(r, torch.rot90(sq, 1, (2, 3)), n=16)  # cos(pi / 2) is -4e-8 in float32: grid off by ~1e-7


def test_spatial_transformer_starts_at_identity_and_trains():
    torch.manual_seed(0)
    st = SpatialTransformer(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.ReLU()), 8)
    x = torch.randn(4, 1, 8, 8)
    assert_close_f32(st(x), x, n=16)
    st(x).sum().backward()
    assert st.fc_theta.weight.grad.abs().sum() > 0  # gradients reach the localisation net


def test_errors():
    with pytest.raises(ValueError, match=r"theta must be \(B, 2, 3\)"):
        affine_grid(torch.zeros(2, 3, 3), (2, 1, 4, 4))
    with pytest.raises(ValueError, match="theta has 2 matrices"):
        affine_grid(torch.zeros(2, 2, 3), (3, 1, 4, 4))
    with pytest.raises(ValueError, match=r"grid must be \(B, H_out, W_out, 2\)"):
        grid_sample(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4, 3))
    with pytest.raises(ValueError, match="grid batch"):
        grid_sample(torch.zeros(1, 1, 4, 4), torch.zeros(2, 4, 4, 2))
