"""The LSTM's three routes through a sequence compute the same thing: the step equations written out
(`_lstm_sequence_equations`, what the glossary shows), the training path with hand-written backpropagation
through time (`_LSTMSequence`) and the evaluation path that keeps no history (`_lstm_sequence_nograd`,
taken under torch.no_grad() or when nothing requires a gradient)."""

from __future__ import annotations

import pytest
import torch

import dlterms.nn as nn
from dlterms.nn.recurrent import _lstm_sequence_equations, _lstm_sequence_nograd, _LSTMSequence

DT = torch.float64
EPS32 = torch.finfo(torch.float32).eps


def _inputs(T, D, B, H, dtype=DT, seed=0):
    g = torch.Generator().manual_seed(seed)
    xp = torch.randn(T, D, B, 4 * H, generator=g, dtype=dtype)  # W_ih x_t + b, any values
    h0, c0 = (torch.randn(D, B, H, generator=g, dtype=dtype) for _ in range(2))
    w_hh = torch.randn(D, 4 * H, H, generator=g, dtype=dtype) / H**0.5
    return xp, h0, c0, w_hh


@pytest.mark.parametrize("T,D,B,H", [(7, 1, 3, 5), (7, 2, 3, 5), (1, 1, 1, 4), (12, 2, 1, 8)])
def test_three_routes_agree(T, D, B, H):
    xp, h0, c0, w_hh = _inputs(T, D, B, H)
    ref = _lstm_sequence_equations(xp, h0, c0, w_hh)
    with torch.no_grad():
        fast = _lstm_sequence_nograd(xp, h0, c0, w_hh)
        train = _LSTMSequence.apply(xp, h0, c0, w_hh)
    for a, b, c in zip(fast, train, ref):
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(b, c, rtol=1e-12, atol=1e-13)


def test_evaluation_route_leaves_its_inputs_alone():
    xp, h0, c0, w_hh = _inputs(6, 2, 3, 4)
    copies = [t.clone() for t in (xp, h0, c0, w_hh)]
    out, h, c = _lstm_sequence_nograd(xp, h0, c0, w_hh)
    for t, k in zip((xp, h0, c0, w_hh), copies):
        assert torch.equal(t, k)
    torch.testing.assert_close(h, out[-1], rtol=0, atol=0)
    h.zero_()  # the final state is a tensor of its own, not a view of the outputs
    assert out[-1].abs().sum() > 0


@pytest.mark.parametrize(
    "layers,bidir,bias,batch_first", [(1, False, True, False), (2, True, True, True), (2, False, False, False)]
)
def test_module_in_eval_and_no_grad_equals_training_forward_and_torch(layers, bidir, bias, batch_first):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(5, 6, layers, bias=bias, batch_first=batch_first, bidirectional=bidir).to(DT).eval()
    ours = nn.LSTM(5, 6, layers, bias=bias, batch_first=batch_first, bidirectional=bidir).to(DT).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn((3, 8, 5) if batch_first else (8, 3, 5), dtype=DT)
    with_grad = ours(x)  # parameters require grad: the training route
    assert with_grad[0].requires_grad
    with torch.no_grad():
        no_grad, expected = ours(x), ref(x)
    for a, b, c in zip((with_grad[0], *with_grad[1]), (no_grad[0], *no_grad[1]), (expected[0], *expected[1])):
        torch.testing.assert_close(b, a.detach(), rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(b, c, rtol=1e-10, atol=1e-12)
    # frozen parameters and an input without grad take the evaluation route with autograd on, too
    ours.requires_grad_(False)
    frozen = ours(x)
    assert not frozen[0].requires_grad
    torch.testing.assert_close(frozen[0], no_grad[0], rtol=0, atol=0)


def test_evaluation_route_in_float32_against_float64():
    # 35 steps, 2 layers: float32 rounding grows with the products' length n = H + I and, as a random walk,
    # with the steps it is carried through; bound it by c * eps32 * sqrt(n) * sqrt(T) * max|y|
    torch.manual_seed(0)
    m64 = nn.LSTM(64, 64, 2).to(DT).eval()
    m32 = nn.LSTM(64, 64, 2).eval()
    m32.load_state_dict(m64.state_dict())
    x = torch.randn(35, 10, 64, dtype=DT)
    with torch.no_grad():
        y64, y32 = m64(x)[0], m32(x.float())[0].double()
    err, scale = float((y32 - y64).abs().max()), float(y64.abs().max())
    assert err <= 4 * EPS32 * (64 + 64) ** 0.5 * 35**0.5 * scale, (err, scale)
