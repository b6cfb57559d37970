"""Every fast path computes what its equations compute: values and gradients, on random shapes and strides.

Each concept with a fast path (an `autograd.Function` with its backward written out, or a cheaper
formulation) is first written from its equations as a public function; the site shows that function.
These tests keep the two equal, in float64 at tight tolerances (both sides are exact formulas of the
same quantity, so they differ by a few rounding errors of ~1e-16 times the values): the forward values,
the gradient of a random linear function of the outputs with respect to every input, and, where the
fast path hands create_graph=True to the equations (`dlterms.nn._fastpath.grads_through`), a gradient
of the gradient. Inputs are made non-contiguous (transposed or strided views) in half the cases.
"""

from __future__ import annotations

import pytest
import torch

from dlterms.losses import cross_entropy, cross_entropy_equations
from dlterms.methods.tsne import _q_and_grad, _sparse_p, joint_probabilities, kl_gradient
from dlterms.nn.activations import log_softmax, log_softmax_equations, softmax, softmax_equations
from dlterms.nn.conv import conv1d, conv2d, conv_equations
from dlterms.nn.normalization import batch_norm, batch_norm_equations, layer_norm, layer_norm_equations
from dlterms.nn.recurrent import _LSTMSequence, lstm_sequence_equations
from dlterms.nn.spatial_transformer import grid_sample, grid_sample_equations

DT = torch.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64: both sides are exact formulas, a few roundings apart
CASES = range(12)  # random configurations per concept


def _rand(g: torch.Generator, *shape: int, strided: bool = False, scale: float = 1.0) -> torch.Tensor:
    """A float64 tensor of `shape`; with `strided`, a non-contiguous view (every other element of a
    tensor twice as long in the last dimension, transposed back and forth where it has two dims)."""
    if not strided:
        return torch.randn(*shape, generator=g, dtype=DT) * scale
    big = torch.randn(*shape[:-1], 2 * shape[-1], generator=g, dtype=DT) * scale
    x = big[..., ::2]
    assert not x.is_contiguous() or x.numel() <= 1
    return x


def _leaves(*xs):
    return [None if x is None else x.detach().clone().requires_grad_(True) for x in xs]


def _grads(outs, inputs, g_outs, create_graph=False, retain_graph=None):
    wanted = [x for x in inputs if x is not None]
    return torch.autograd.grad(outs, wanted, g_outs, create_graph=create_graph, retain_graph=retain_graph)


def _assert_all_close(a, b, **tol):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, **(tol or TOL))


def _check(fast, equations, inputs, seed: int, second_order: bool = True):
    """fast(*inputs) == equations(*inputs): values, gradients, and (optionally) gradients of gradients."""
    g = torch.Generator().manual_seed(1000 + seed)
    a, b = _leaves(*inputs), _leaves(*inputs)
    ya, yb = fast(*a), equations(*b)
    ya_t, yb_t = (ya if isinstance(ya, tuple) else (ya,)), (yb if isinstance(yb, tuple) else (yb,))
    _assert_all_close(ya_t, yb_t)
    g_out = tuple(torch.randn(y.shape, generator=g, dtype=DT) for y in yb_t)
    # first order without create_graph: the closed-form backward itself
    _assert_all_close(_grads(ya_t, a, g_out, retain_graph=True), _grads(yb_t, b, g_out, retain_graph=True))
    if second_order:  # d/d(inputs) of <v, gradient>: what create_graph=True callers differentiate
        ga = _grads(ya_t, a, g_out, create_graph=True)
        gb = _grads(yb_t, b, g_out, create_graph=True)
        _assert_all_close(ga, gb)
        vs = [torch.randn(x.shape, generator=g, dtype=DT) for x in ga]
        sa = sum((x * v).sum() for x, v in zip(ga, vs))
        sb = sum((x * v).sum() for x, v in zip(gb, vs))
        wa = [x for x in a if x is not None]
        wb = [x for x in b if x is not None]
        ha = torch.autograd.grad(sa, wa, allow_unused=True, materialize_grads=True)
        hb = torch.autograd.grad(sb, wb, allow_unused=True, materialize_grads=True)
        _assert_all_close(ha, hb)


@pytest.mark.parametrize("seed", CASES)
def test_softmax_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)
    shape = [int(n) for n in torch.randint(1, 7, (int(torch.randint(1, 5, (1,), generator=g)),), generator=g)]
    dim = int(torch.randint(-len(shape), len(shape), (1,), generator=g))
    x = _rand(g, *shape, strided=seed % 2 == 1, scale=5.0)
    _check(lambda z: softmax(z, dim), lambda z: softmax_equations(z, dim), (x,), seed)


@pytest.mark.parametrize("seed", CASES)
def test_log_softmax_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)
    shape = [int(n) for n in torch.randint(1, 7, (int(torch.randint(1, 5, (1,), generator=g)),), generator=g)]
    dim = int(torch.randint(-len(shape), len(shape), (1,), generator=g))
    x = _rand(g, *shape, strided=seed % 2 == 1, scale=5.0)
    _check(lambda z: log_softmax(z, dim), lambda z: log_softmax_equations(z, dim), (x,), seed)


def test_log_softmax_fast_path_is_bit_identical_in_float32():
    # the backward is evaluated in autograd's order for the equations: values and gradients agree exactly
    g = torch.Generator().manual_seed(0)
    for shape, dim in (((64, 10), -1), ((8, 30, 5), 1), ((1000,), 0)):
        x = (torch.randn(shape, generator=g) * 4).requires_grad_(True)
        up = torch.randn(shape, generator=g)
        a, b = log_softmax(x, dim), log_softmax_equations(x, dim)
        assert torch.equal(a, b)
        assert torch.equal(torch.autograd.grad(a, x, up)[0], torch.autograd.grad(b, x, up)[0])


@pytest.mark.parametrize("seed", CASES)
def test_batch_norm_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)
    B, C = int(torch.randint(2, 6, (1,), generator=g)), int(torch.randint(1, 5, (1,), generator=g))
    spatial = [[], [5], [3, 4]][seed % 3]
    x = _rand(g, B, C, *spatial, strided=seed % 2 == 1, scale=3.0) + 2.0
    affine = seed % 4 != 3
    w = _rand(g, C) if affine else None
    b = _rand(g, C) if affine else None
    stats = {}

    def run(fn, key):
        def f(x, w, b):
            rm, rv = torch.zeros(C, dtype=DT), torch.ones(C, dtype=DT)
            y = fn(x, rm, rv, w, b, True, 0.3, 1e-5)
            stats[key] = (rm, rv)
            return y

        return f

    _check(run(batch_norm, "fast"), run(batch_norm_equations, "eq"), (x, w, b), seed)
    _assert_all_close(stats["fast"], stats["eq"])  # the running statistics move alike
    # evaluation mode (the running statistics normalise) is one code path: the equations
    rm, rv = torch.randn(C, generator=g, dtype=DT), torch.rand(C, generator=g, dtype=DT) + 0.5
    torch.testing.assert_close(
        batch_norm(x, rm, rv, w, b, False), batch_norm_equations(x, rm, rv, w, b, False), rtol=0, atol=0
    )


@pytest.mark.parametrize("seed", CASES)
def test_layer_norm_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)
    lead = [int(n) for n in torch.randint(1, 5, (seed % 3,), generator=g)]
    normalized = tuple(int(n) for n in torch.randint(2, 6, (1 + seed % 2,), generator=g))
    x = _rand(g, *lead, *normalized, strided=seed % 2 == 1, scale=2.0) - 1.0
    affine = seed % 4 != 3
    w = _rand(g, *normalized) if affine else None
    b = _rand(g, *normalized) if affine else None
    _check(
        lambda x, w, b: layer_norm(x, normalized, w, b, 1e-5),
        lambda x, w, b: layer_norm_equations(x, normalized, w, b, 1e-5),
        (x, w, b),
        seed,
    )


@pytest.mark.parametrize("seed", CASES)
def test_lstm_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)
    T, D, B, H = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((1, 9), (1, 3), (1, 4), (1, 6)))
    xp = _rand(g, T, D, B, 4 * H, strided=seed % 2 == 1)
    h0, c0 = _rand(g, D, B, H), _rand(g, D, B, H)
    w_hh = _rand(g, D, 4 * H, H, scale=H**-0.5)
    _check(_LSTMSequence.apply, lstm_sequence_equations, (xp, h0, c0, w_hh), seed, second_order=seed < 4)


@pytest.mark.parametrize("seed", CASES)
def test_convolution_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)

    def draw(lo, hi):
        return int(torch.randint(lo, hi, (1,), generator=g))

    nd = 1 + seed % 2
    groups = [1, 1, 2, 3][seed % 4]
    c_in, c_out = groups * draw(1, 4), groups * draw(1, 3)
    k = tuple(draw(1, 4) for _ in range(nd))
    s = tuple(draw(1, 3) for _ in range(nd))
    d = tuple(draw(1, 3) for _ in range(nd))
    p = tuple(draw(0, 3) for _ in range(nd))
    size = [d[i] * (k[i] - 1) + 1 + draw(0, 6) for i in range(nd)]
    B = draw(1, 4)
    x = _rand(g, B, c_in, *size, strided=seed % 3 == 1)
    if seed % 3 == 2:  # a channels-first view of channels-last memory
        x = _rand(g, B, *size, c_in).movedim(-1, 1)
    w = _rand(g, c_out, c_in // groups, *k)
    b = _rand(g, c_out) if seed % 5 else None
    conv = conv1d if nd == 1 else conv2d
    _check(
        lambda x, w, b: conv(x, w, b, s, p, d, groups),
        lambda x, w, b: conv_equations(x, w, b, s, p, d, groups),
        (x, w, b),
        seed,
        second_order=groups == 1,  # groups > 1 is plain autograd already; groups == 1 is _ConvGemm
    )


def test_convolution_equations_equal_torch():
    # the sum as written, checked once against the reference itself (the layers' own torch tests are
    # in tests/vision/test_conv.py)
    g = torch.Generator().manual_seed(0)
    x, w, b = _rand(g, 2, 6, 9, 8), _rand(g, 4, 3, 3, 2), _rand(g, 4)
    ref = torch.nn.functional.conv2d(x, w, b, (2, 1), (1, 2), (1, 2), 2)
    torch.testing.assert_close(conv_equations(x, w, b, (2, 1), (1, 2), (1, 2), 2), ref, **TOL)


@pytest.mark.parametrize("seed", CASES)
def test_cross_entropy_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)
    N, K = int(torch.randint(1, 7, (1,), generator=g)), int(torch.randint(2, 6, (1,), generator=g))
    extra = [int(torch.randint(1, 4, (1,), generator=g))] if seed % 3 == 2 else []
    z = _rand(g, N, K, *extra, strided=seed % 2 == 1, scale=4.0)
    y = torch.randint(0, K, (N, *extra), generator=g)
    ignore = -100
    if seed % 4 == 1:
        y[0] = ignore  # an ignored target (at least one row stays kept when N > 1)
        if N == 1:
            ignore = -1
    weight = torch.rand(K, generator=g, dtype=DT) + 0.5 if seed % 3 == 0 else None
    reduction = ("mean", "sum", "none")[seed % 3]
    eps = (0.0, 0.1, 0.0, 0.3)[seed % 4]
    _check(
        lambda z: cross_entropy(z, y, weight, ignore, reduction, eps),
        lambda z: cross_entropy_equations(z, y, weight, ignore, reduction, eps),
        (z,),
        seed,
    )


@pytest.mark.parametrize("seed", CASES)
def test_tsne_gradient_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)
    N, d = int(torch.randint(5, 40, (1,), generator=g)), 1 + seed % 3
    X = torch.randn(N, 4, generator=g, dtype=DT)
    P = joint_probabilities(X, perplexity=min(5.0, (N - 1) / 3), n_neighbors="auto" if seed % 2 else None)
    Y = _rand(g, N, d, strided=seed % 2 == 1, scale=3.0)
    e = (1.0, 12.0, 4.0)[seed % 3]
    ref = kl_gradient(P, Y, e)
    for PP in (P, _sparse_p(P, DT)):  # both of the fast path's branches
        fast, _ = _q_and_grad(PP, Y, e, False)
        torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-14)


def test_tsne_gradient_equations_are_the_gradient_of_the_kl():
    # the equations themselves, against autograd of C = sum p ln(p / q)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(20, 3, generator=g, dtype=DT)
    P = joint_probabilities(X, perplexity=5.0)
    Y = torch.randn(20, 2, generator=g, dtype=DT).requires_grad_(True)
    n = 1.0 / (1.0 + torch.cdist(Y, Y).square())
    n = n * (1 - torch.eye(20, dtype=DT))
    q = n / n.sum()
    off = ~torch.eye(20, dtype=torch.bool)
    kl = (torch.xlogy(P, P) - P * torch.log(q.clamp_min(1e-300)))[off].sum()
    (auto,) = torch.autograd.grad(kl, Y)
    torch.testing.assert_close(kl_gradient(P, Y.detach()), auto, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", CASES)
def test_grid_sample_fast_path_equals_equations(seed):
    g = torch.Generator().manual_seed(seed)
    B, C, H, W = (int(torch.randint(1, hi, (1,), generator=g)) for hi in (3, 4, 7, 7))
    H, W = H + 1, W + 1
    Ho, Wo = (int(torch.randint(1, 6, (1,), generator=g)) for _ in range(2))
    x = _rand(g, B, C, H, W, strided=seed % 2 == 1)
    grid = torch.rand(B, Ho, Wo, 2, generator=g, dtype=DT) * 2.6 - 1.3  # some points outside the image
    align = seed % 2 == 0
    # no gradient of the gradient: the kernel max(0, 1 - |t|) is piecewise linear, its Hessian 0 a.e.
    _check(
        lambda x, grid: grid_sample(x, grid, align),
        lambda x, grid: grid_sample_equations(x, grid, align),
        (x, grid),
        seed,
        second_order=False,
    )
    ref = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=align)
    torch.testing.assert_close(grid_sample_equations(x, grid, align), ref, **TOL)
