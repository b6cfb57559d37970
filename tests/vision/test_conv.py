"""Our im2col convolution against torch's conv1d/conv2d on random shapes, values and gradients."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from _tolerance import assert_close_f32
from dlterms.nn import Conv1d, Conv2d, conv1d, conv2d, conv_output_size, im2col


def _random_case(rng: random.Random, nd: int):
    groups = rng.choice([1, 1, 2, 3])
    c_in = groups * rng.randint(1, 3)
    c_out = groups * rng.randint(1, 3)
    k = tuple(rng.randint(1, 4) for _ in range(nd))
    s = tuple(rng.randint(1, 3) for _ in range(nd))
    d = tuple(rng.randint(1, 3) for _ in range(nd))
    p = tuple(rng.randint(0, 3) for _ in range(nd))
    size = tuple(rng.randint(max(1, di * (ki - 1) + 1 - 2 * pi), 11) for ki, di, pi in zip(k, d, p))
    b = rng.randint(1, 3)
    return b, c_in, c_out, k, s, d, p, size, groups


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("case", range(25))
def test_matches_torch_on_random_shapes(nd, case):
    rng = random.Random(1000 * nd + case)
    b, c_in, c_out, k, s, d, p, size, groups = _random_case(rng, nd)
    torch.manual_seed(case)
    x = torch.randn(b, c_in, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, c_in // groups, *k, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(c_out, dtype=torch.float64, requires_grad=True)
    ours_fn, ref_fn = (conv1d, F.conv1d) if nd == 1 else (conv2d, F.conv2d)
    y = ours_fn(x, w, bias, stride=s, padding=p, dilation=d, groups=groups)
    ref = ref_fn(x, w, bias, stride=s, padding=p, dilation=d, groups=groups)
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref, atol=1e-10, rtol=1e-10)
    g = torch.randn_like(ref)
    ours_g = torch.autograd.grad(y, (x, w, bias), g)
    ref_g = torch.autograd.grad(ref, (x, w, bias), g)
    for a, r in zip(ours_g, ref_g):
        torch.testing.assert_close(a, r, atol=1e-10, rtol=1e-10)
    # the output-size formula holds on every dimension
    for i in range(nd):
        assert y.shape[2 + i] == conv_output_size(size[i], k[i], s[i], p[i], d[i])


def test_float32_to_1e5_and_state_dict_swaps_with_torch():
    torch.manual_seed(0)
    ours = Conv2d(3, 8, 3, stride=2, padding=1, dilation=1, groups=1)
    ref = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 3, 17, 13)
    assert_close_f32(ours(x), ref(x), n=3 * 3 * 3 + 1)  # float32 rule: C_in * kH * kW products and the bias
    ours.load_state_dict(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1).state_dict())
    assert set(ours.state_dict()) == {"weight", "bias"}
    c1 = Conv1d(2, 5, 4, padding=2, dilation=2, bias=False)
    r1 = torch.nn.Conv1d(2, 5, 4, padding=2, dilation=2, bias=False)
    r1.load_state_dict(c1.state_dict())
    x1 = torch.randn(3, 2, 20)
    assert_close_f32(c1(x1), r1(x1), n=2 * 4)


@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (3, 2), (2, 3)])
def test_padding_same_and_valid(k, d):
    torch.manual_seed(k + d)
    ours = Conv2d(2, 3, k, padding="same", dilation=d)
    ref = torch.nn.Conv2d(2, 3, k, padding="same", dilation=d)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 2, 9, 10)
    assert_close_f32(ours(x), ref(x), n=2 * k * k + 1)
    assert ours(x).shape[2:] == x.shape[2:]
    v = Conv1d(2, 3, k, padding="valid", dilation=d)
    rv = torch.nn.Conv1d(2, 3, k, padding="valid", dilation=d)
    rv.load_state_dict(v.state_dict())
    x1 = torch.randn(2, 2, 12)
    assert_close_f32(v(x1), rv(x1), n=2 * k + 1)


def test_default_init_matches_torch_bounds():
    c = Conv2d(4, 6, (3, 5), groups=2)
    bound = 1 / (2 * 3 * 5) ** 0.5
    assert c.weight.shape == (6, 2, 3, 5)
    assert c.weight.abs().max() <= bound and c.bias.abs().max() <= bound
    assert c.weight.std() > bound / 3  # not all zeros


@pytest.mark.parametrize("case", range(10))
def test_im2col_matches_unfold(case):
    rng = random.Random(case)
    b, c, _, k, s, d, p, size, _ = _random_case(rng, 2)
    x = torch.randn(b, c, *size)
    torch.testing.assert_close(im2col(x, k, s, p, d), F.unfold(x, k, dilation=d, padding=p, stride=s))


def test_output_size_formula_by_hand():
    # (n + 2p - d(k-1) - 1) // s + 1
    assert conv_output_size(8, 3) == 6
    assert conv_output_size(8, 3, padding=1) == 8
    assert conv_output_size(28, 5, stride=2, padding=2) == 14
    assert conv_output_size(40, 5, stride=2, padding=1) == 19
    assert conv_output_size(32, 3, dilation=8, padding=8) == 32
    c = Conv2d(1, 1, (3, 5), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    assert c.output_size(15, 20) == tuple(c(torch.zeros(1, 1, 15, 20)).shape[2:]) == (8, 12)


def test_hand_worked_example():
    # a 1x2 kernel [1, -1] on a ramp gives a constant difference
    x = torch.tensor([[[1.0, 2.0, 4.0, 7.0]]])
    w = torch.tensor([[[1.0, -1.0]]])
    assert conv1d(x, w).tolist() == [[[-1.0, -2.0, -3.0]]]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="in_channels=3 must be divisible by groups=2"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels=3 must be divisible by groups=2"):
        Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        Conv2d(1, 1, 0)
    with pytest.raises(ValueError, match="padding_mode"):
        Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        Conv1d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="kernel_size must be an int or a sequence of 2 ints"):
        Conv2d(1, 1, (3, 3, 3))
    c = Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"input channel dimension \(dim 1\) is 2"):
        c(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"expected a 4-D input \(B, C, H, W\)"):
        c(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"spatial dimension 1 \(input dim 3\) has size 2"):
        c(torch.zeros(1, 3, 8, 2))
    with pytest.raises(ValueError, match="kernel spans 5"):
        conv_output_size(4, 3, dilation=2)
    with pytest.raises(ValueError, match="stride must be an integer >= 1, got 0"):
        conv_output_size(4, 3, stride=0)
    assert "kernel_size=(3, 3)" in repr(c)


def test_double_backward_matches_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    for fn in (conv2d, F.conv2d):
        y = fn(x, w, None, 1, 1).tanh().sum()
        (gx,) = torch.autograd.grad(y, x, create_graph=True)
        (gw,) = torch.autograd.grad(gx.square().sum(), w)
        if fn is conv2d:
            ours = gw
    torch.testing.assert_close(ours, gw, atol=1e-10, rtol=1e-10)


def test_receptive_field_formula():
    from dlterms.nn.conv import receptive_field

    assert receptive_field([3, 3, 3, 3]) == 9
    assert receptive_field([3, 3, 3, 3], [1, 2, 4, 8]) == 31
    assert receptive_field([3, 3], strides=[2, 1]) == 7  # second layer's step is 2 input positions
    # measured by gradient support of a linear stack
    from dlterms.models.cnn import DilatedStack

    for dil, rf in (((1, 1, 1, 1), 9), ((1, 2, 4, 8), 31)):
        m = DilatedStack(1, 1, channels=2, dilations=dil, activation="identity").double()
        x = torch.randn(1, 1, 64, dtype=torch.float64, requires_grad=True)
        m(x)[0, 0, 32].backward()
        assert int((x.grad[0, 0] != 0).sum()) == rf
    with pytest.raises(ValueError, match="one dilation and stride per layer"):
        receptive_field([3, 3], [1])


# --- the chunked im2col matmul with its written-out backward (_ConvGemm) -----------------------------------------


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of a few hundred bytes, so every batch below is split and X_col is rebuilt in the backward."""
    import dlterms.nn.conv as conv

    monkeypatch.setattr(conv, "_CHUNK_BYTES", 600)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize(
    "nd,kw",
    [
        (2, dict(stride=1, padding=1, dilation=1)),
        (2, dict(stride=2, padding=2, dilation=2)),
        (1, dict(stride=1, padding=8, dilation=8)),
        (1, dict(stride=3, padding=0, dilation=1)),
    ],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv_backward_passes_gradcheck(nd, kw, with_bias, chunked, request):
    """Finite differences in float64 (gradcheck) and second derivatives (gradgradcheck, which goes through
    autograd of the whole-batch equations), with one chunk (X_col kept) or many (X_col rebuilt)."""
    if chunked:
        request.getfixturevalue("tiny_chunks")
    torch.manual_seed(nd)
    size = (5, 4) if nd == 2 else (17,)
    x = torch.randn(3, 2, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, *(3,) * nd, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True) if with_bias else None
    fn = conv2d if nd == 2 else conv1d
    inputs = (x, w) if b is None else (x, w, b)

    def f(*a):
        return fn(a[0], a[1], a[2] if len(a) > 2 else None, **kw)

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)
    assert torch.autograd.gradgradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("chunked", [False, True])
def test_conv_gradients_match_torch_at_benchmark_size(chunked, request):
    """The digits CNN's block 2 in float32, batch split across chunks or not: outputs and all three
    gradients within the float32 rule of torch's conv2d; retain_graph gives the same gradient twice."""
    if chunked:
        request.getfixturevalue("tiny_chunks")
    torch.manual_seed(0)
    ours, ref = Conv2d(16, 32, 3, padding=1), torch.nn.Conv2d(16, 32, 3, padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(64, 16, 8, 8)
    g = torch.randn(64, 32, 8, 8)
    grads = []
    for m in (ours, ref):
        xi = x.clone().requires_grad_()
        y = m(xi)
        grads.append((y.detach(), *torch.autograd.grad((y * g).sum(), (xi, m.weight, m.bias), retain_graph=True)))
        if m is ours:
            again = torch.autograd.grad((y * g).sum(), xi)[0]
            torch.testing.assert_close(again, grads[0][1], rtol=0, atol=0)
    # sums behind each value: output C_in*3*3 (+ bias); input gradient C_out*3*3; weight and bias
    # gradients N*H*W = 4096 (the sums that differ between CPUs: 1.07e-4 on one, against a fixed 1e-4)
    for a, r, n in zip(*grads, (16 * 9 + 1, 32 * 9, 64 * 8 * 8, 64 * 8 * 8)):
        assert_close_f32(a, r, n=n)


def test_conv_without_input_gradient_still_gives_weight_gradient(tiny_chunks):
    torch.manual_seed(1)
    c = Conv1d(2, 3, 3, padding=1)
    x = torch.randn(9, 2, 11)  # a first layer's input: no gradient wanted
    c(x).square().sum().backward()
    w = c.weight.detach().clone().requires_grad_()
    F.conv1d(x, w, c.bias.detach(), padding=1).square().sum().backward()
    assert_close_f32(c.weight.grad, w.grad, n=9 * 11 + 2 * 3 + 1)  # the forward, then a sum over N * L
