"""Our pooling against torch's max/avg pooling on random shapes, values and gradients."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms.nn import (
    AvgPool1d,
    AvgPool2d,
    GlobalAvgPool,
    GlobalMaxPool,
    MaxPool1d,
    MaxPool2d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
    max_pool_equations,
)


def _case(rng: random.Random, nd: int):
    k = tuple(rng.randint(1, 4) for _ in range(nd))
    s = tuple(rng.randint(1, 3) for _ in range(nd))
    p = tuple(rng.randint(0, ki // 2) for ki in k)
    d = tuple(rng.randint(1, 2) for _ in range(nd))
    size = tuple(rng.randint(di * (ki - 1) + 1, 12) for ki, di in zip(k, d))
    return k, s, p, d, size


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("case", range(20))
def test_max_and_avg_match_torch(nd, case):
    rng = random.Random(100 * nd + case)
    k, s, p, d, size = _case(rng, nd)
    torch.manual_seed(case)
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)  # distinct values: no ties
    ours_max = (MaxPool1d if nd == 1 else MaxPool2d)(k, s, p, d)
    ref_max = F.max_pool1d if nd == 1 else F.max_pool2d
    y = ours_max(x)
    r = ref_max(x, k, s, p, d)
    torch.testing.assert_close(y, r, atol=0, rtol=0)
    g = torch.randn_like(r)
    torch.testing.assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(r, x, g)[0])
    assert tuple(y.shape[2:]) == ours_max.output_size(*size)
    for cip in (True, False):
        ours_avg = (AvgPool1d if nd == 1 else AvgPool2d)(k, s, p, count_include_pad=cip)
        ref_avg = F.avg_pool1d if nd == 1 else F.avg_pool2d
        y = ours_avg(x)
        r = ref_avg(x, k, s, p, count_include_pad=cip)
        torch.testing.assert_close(y, r, atol=1e-12, rtol=1e-12)
        ga = torch.randn_like(r)
        torch.testing.assert_close(torch.autograd.grad(y, x, ga)[0], torch.autograd.grad(r, x, ga)[0])


def test_float32_and_defaults():
    x = torch.randn(4, 5, 8, 8)
    torch.testing.assert_close(max_pool2d(x, 2), F.max_pool2d(x, 2), atol=1e-6, rtol=1e-6)
    assert_close_f32(avg_pool2d(x, 2), F.avg_pool2d(x, 2), n=4 + 1)  # float32 rule: a mean of 4
    assert MaxPool2d(2).output_size(8, 8) == (4, 4)


def test_global_pooling():
    x = torch.randn(3, 4, 5, 7)
    ref = F.adaptive_avg_pool2d(x, 1).flatten(1)
    assert_close_f32(GlobalAvgPool()(x), ref, n=5 * 7 + 1)
    torch.testing.assert_close(GlobalMaxPool(flatten=False)(x), F.adaptive_max_pool2d(x, 1))
    x1 = torch.randn(3, 4, 9)
    ref1 = F.adaptive_avg_pool1d(x1, 1)
    assert_close_f32(GlobalAvgPool(flatten=False)(x1), ref1, n=9 + 1)
    with pytest.raises(ValueError, match="at least one spatial dim"):
        GlobalAvgPool()(torch.zeros(3, 4))


def test_hand_worked():
    x = torch.tensor([[[[1.0, 2.0, 5.0, 6.0], [3.0, 4.0, 7.0, 8.0]]]])
    assert MaxPool2d(2)(x).tolist() == [[[[4.0, 8.0]]]]
    assert AvgPool2d(2)(x).tolist() == [[[[2.5, 6.5]]]]
    # max pooling routes the gradient to the arg-max only
    x.requires_grad_(True)
    MaxPool2d(2)(x).sum().backward()
    assert x.grad.tolist() == [[[[0, 0, 0, 0], [0, 1, 0, 1]]]]


def test_errors():
    with pytest.raises(ValueError, match="padding must be in"):
        MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="kernel_size and stride must be >= 1"):
        AvgPool1d(0)
    with pytest.raises(ValueError, match=r"expected a 4-D input \(B, C, H, W\)"):
        MaxPool2d(2)(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match=r"spatial dimension 0 \(input dim 2\) has size 1"):
        MaxPool2d(2)(torch.zeros(1, 1, 1, 8))
    assert "kernel_size=(2, 2)" in repr(MaxPool2d(2))


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("case", range(12))
def test_running_max_equals_the_equations_with_ties(nd, case):
    # values from {0, 1, 2}: most windows hold their maximum more than once, so this checks that the
    # gradient goes to the same (first) position as the gathered windows' torch.max sends it
    rng = random.Random(7 * nd + case)
    k, s, p, d, size = _case(rng, nd)
    g = torch.Generator().manual_seed(case)
    x = torch.randint(0, 3, (2, 3, *size), generator=g).double().requires_grad_(True)
    pool = max_pool1d if nd == 1 else max_pool2d
    y = pool(x, k, s, p, d)
    r = max_pool_equations(x, k, s, p, d)
    torch.testing.assert_close(y, r, atol=0, rtol=0)
    gy = torch.randn(r.shape, generator=g, dtype=torch.float64)
    gx, gr = torch.autograd.grad(y, x, gy)[0], torch.autograd.grad(r, x, gy)[0]
    # overlapping windows add in another order: float64 rounding only, far below any misrouted O(1) value
    torch.testing.assert_close(gx, gr, atol=1e-12, rtol=0)
    torch.testing.assert_close(gx.sum(), gy.sum())  # every output's gradient is sent exactly once


def test_running_max_nan_and_second_order():
    x = torch.tensor([[[[1.0, float("nan"), 3.0, 0.0], [float("nan"), 2.0, 0.0, 0.0]]]], requires_grad=True)
    y = max_pool2d(x, 2)
    r = max_pool_equations(x, 2)
    torch.testing.assert_close(y, r, equal_nan=True)
    torch.testing.assert_close(torch.autograd.grad(y.sum(), x)[0], torch.autograd.grad(r.sum(), x)[0])
    # create_graph: the gradient is differentiable again (here with respect to the upstream gradient)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    gy = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(max_pool2d(x, 2), x, gy, create_graph=True)
    (gr,) = torch.autograd.grad(max_pool_equations(x, 2), x, gy, create_graph=True)
    w = torch.randn_like(gx)
    torch.testing.assert_close(torch.autograd.grad(gx, gy, w)[0], torch.autograd.grad(gr, gy, w)[0])


def test_max_pool_under_vmap():
    x = torch.randn(4, 2, 3, 6, 6)
    ys = torch.func.vmap(lambda xi: max_pool2d(xi, 2))(x)
    torch.testing.assert_close(ys, torch.stack([max_pool2d(xi, 2) for xi in x]))
