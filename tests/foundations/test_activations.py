"""Activations, their derivatives and softmax against torch.nn.functional and torch.autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms.nn import activations as A

# Inputs covering both signs, zero exactly, the saturated tails and large magnitudes.
X = torch.cat(
    [
        torch.linspace(-30, 30, 601, dtype=torch.float64),
        torch.tensor([0.0, -1e-9, 1e-9, -700.0, 700.0], dtype=torch.float64),
    ]
)

REFERENCES = [
    ("sigmoid", A.sigmoid, A.sigmoid_derivative, torch.sigmoid, {}),
    ("tanh", A.tanh, A.tanh_derivative, torch.tanh, {}),
    ("relu", A.relu, A.relu_derivative, F.relu, {}),
    ("leaky_relu", A.leaky_relu, A.leaky_relu_derivative, F.leaky_relu, {"negative_slope": 0.1}),
    ("gelu", A.gelu, A.gelu_derivative, F.gelu, {}),
    ("gelu_tanh", A.gelu, A.gelu_derivative, F.gelu, {"approximate": "tanh"}),
]


@pytest.mark.parametrize("name,fn,dfn,ref,kw", REFERENCES, ids=[r[0] for r in REFERENCES])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_values_and_derivatives_match_torch(name, fn, dfn, ref, kw, dtype):
    def close(a, b):
        if dtype == torch.float64:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        else:
            # float32 rule, elementwise: the rounding of an argument x, eps * |x|, moves f(x) by |x f'(x)|,
            # so the scale is max(|f|, 1) * max(|x|, 1); n = 16 operations in the longest formula
            # (tanh-GELU's derivative). torch's own tanh-GELU gradient loses ~2e-6 to cancellation in the
            # far tail (x near -5, where ours keeps 1 - tanh^2 > 0).
            assert_close_f32(a, b, n=16, scale=b.detach().abs().clamp(min=1.0) * X.abs().clamp(min=1.0))

    x = X.to(dtype).clone().requires_grad_(True)
    xr = X.to(dtype).clone().requires_grad_(True)
    y, yr = fn(x, **kw), ref(xr, **kw)
    close(y, yr)
    # autograd through our forward, and our hand-written derivative, both equal torch's derivative
    (g,) = torch.autograd.grad(y.sum(), x)
    (gr,) = torch.autograd.grad(yr.sum(), xr)
    close(g, gr)
    close(dfn(X.to(dtype), **kw), gr)
    assert torch.isfinite(y).all() and torch.isfinite(g).all()


def test_derivatives_at_zero_follow_torch_conventions():
    z = torch.zeros(1, dtype=torch.float64)
    assert A.relu_derivative(z).item() == 0.0
    assert A.leaky_relu_derivative(z, 0.2).item() == pytest.approx(0.2)
    assert A.sigmoid_derivative(z).item() == 0.25
    assert A.tanh_derivative(z).item() == 1.0


def test_sigmoid_derivative_never_exceeds_a_quarter():
    assert A.sigmoid_derivative(X).max().item() == pytest.approx(0.25, abs=1e-15)


def test_tanh_is_accurate_near_zero():
    x = torch.tensor([1e-8, -3e-9], dtype=torch.float32)
    assert_close_f32(A.tanh(x), torch.tanh(x), n=1, scale=x.abs())  # relative: tanh(x) = x here


def test_second_derivative_flows_through_our_forward():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(A.sigmoid(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    s = torch.sigmoid(x.detach())
    torch.testing.assert_close(h, s * (1 - s) * (1 - 2 * s), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((4, 5), -1), ((4, 5), 0), ((2, 3, 6), 1), ((2, 3, 6), -1)])
def test_softmax_and_log_softmax_match_torch(shape, dim):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 10).requires_grad_(True)
    xr = x.detach().clone().requires_grad_(True)
    w = torch.randn(shape, generator=g, dtype=torch.float64)
    for ours, ref in ((A.softmax, F.softmax), (A.log_softmax, F.log_softmax)):
        y, yr = ours(x, dim=dim), ref(xr, dim=dim)
        torch.testing.assert_close(y, yr, rtol=1e-12, atol=1e-14)
        (gx,) = torch.autograd.grad((y * w).sum(), x)
        (gr,) = torch.autograd.grad((yr * w).sum(), xr)
        torch.testing.assert_close(gx, gr, rtol=1e-10, atol=1e-12)


def test_softmax_is_stable_for_huge_logits_and_handles_minus_infinity():
    z = torch.tensor([[1000.0, 999.0, -1000.0], [0.0, float("-inf"), 1.0]])
    p = A.softmax(z)
    assert torch.isfinite(p).all()
    assert_close_f32(p, F.softmax(z, dim=-1), n=8)  # max, 3 exps, a sum of 3, a division
    assert_close_f32(A.log_softmax(z)[0], F.log_softmax(z, dim=-1)[0], n=8)
    naive = torch.exp(z[0]) / torch.exp(z[0]).sum()
    assert torch.isnan(naive).any()


def test_modules_match_functions_and_repr():
    x = torch.randn(3, 4)
    assert torch.equal(A.LeakyReLU(0.2)(x), A.leaky_relu(x, 0.2))
    assert torch.equal(A.GELU("tanh")(x), A.gelu(x, "tanh"))
    assert torch.equal(A.Softmax(dim=0)(x), A.softmax(x, 0))
    assert torch.equal(A.LogSoftmax(dim=1)(x), A.log_softmax(x, 1))
    assert "negative_slope=0.2" in repr(A.LeakyReLU(0.2))
    assert "dim=0" in repr(A.Softmax(0))
    assert isinstance(A.get_activation("ReLU"), A.ReLU)
    assert isinstance(A.get_activation(None), A.Identity)
    assert isinstance(A.get_activation(A.Tanh), A.Tanh)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'erf'"):
        A.GELU("erf")
    with pytest.raises(ValueError, match="negative_slope must be a finite number"):
        A.LeakyReLU(float("nan"))
    with pytest.raises(ValueError, match=r"dim must be an integer in \[-2, 1\].*got 2"):
        A.softmax(torch.zeros(2, 3), dim=2)
    with pytest.raises(ValueError, match="activation must be one of .* got 'swishy'"):
        A.get_activation("swishy")


@pytest.mark.parametrize("shape, dim", [((5, 7), -1), ((3, 4, 6), 1), ((2, 3, 4, 5), 0)])
def test_softmax_closed_form_backward_matches_torch_and_gradcheck(shape, dim):
    z = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: A.softmax(t, dim), (z,))
    assert torch.autograd.gradgradcheck(lambda t: A.softmax(t, dim), (z,))
    g = torch.randn(*shape, dtype=torch.float64)
    (ours,) = torch.autograd.grad(A.softmax(z, dim), z, g)
    (ref,) = torch.autograd.grad(F.softmax(z, dim=dim), z, g)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)


def test_softmax_under_torch_func_and_with_masked_rows():
    z = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = torch.arange(6.0, dtype=torch.float64)
    per_row = torch.func.vmap(torch.func.grad(lambda r: (A.softmax(r, -1) * w).sum()))(z)
    ref = torch.func.vmap(torch.func.grad(lambda r: (F.softmax(r, -1) * w).sum()))(z)
    torch.testing.assert_close(per_row, ref, rtol=1e-12, atol=1e-14)
    masked = torch.tensor([[0.0, float("-inf"), 1.0]], requires_grad=True)
    y = A.softmax(masked)
    y[0, 0].backward()
    assert y[0, 1] == 0 and masked.grad[0, 1] == 0 and torch.isfinite(masked.grad).all()
