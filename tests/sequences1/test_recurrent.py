"""dlterms.nn RNN/LSTM/GRU against torch.nn's with copied weights: outputs, final states, gradients."""

import itertools

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms import nn as dnn

TOL = 1e-5
# float32 comparisons follow the rule of tests/_tolerance.py: the longest chain here is a forward and a
# backward pass through up to 9 steps of 3 layers, each step a sum over I + H = 12 inputs and ~8 gate operations
N_CHAIN = 2 * 9 * 3 * (12 + 8)
KINDS = {"rnn": (dnn.RNN, torch.nn.RNN), "lstm": (dnn.LSTM, torch.nn.LSTM), "gru": (dnn.GRU, torch.nn.GRU)}
CELLS = {
    "rnn": (dnn.RNNCell, torch.nn.RNNCell),
    "lstm": (dnn.LSTMCell, torch.nn.LSTMCell),
    "gru": (dnn.GRUCell, torch.nn.GRUCell),
}
CONFIGS = [  # num_layers, bidirectional, batch_first, bias
    (1, False, True, True),
    (2, False, False, True),
    (1, True, True, True),
    (3, True, False, True),
    (2, True, True, False),
]


def _pair(kind, layers, bidir, batch_first, bias, I=5, H=7, **kw):
    ours_cls, ref_cls = KINDS[kind]
    torch.manual_seed(0)
    ref = ref_cls(I, H, num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidir, **kw)
    ours = ours_cls(I, H, num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidir, **kw)
    ours.load_state_dict(ref.state_dict())  # same names and layout
    return ours, ref


def _close(a, b, tol=TOL):
    assert a.shape == b.shape
    if a.dtype == torch.float32 and tol == TOL:
        assert_close_f32(a, b, n=N_CHAIN)
    else:
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize("kind,config", list(itertools.product(KINDS, CONFIGS)))
def test_matches_torch_outputs_states_and_gradients(kind, config):
    layers, bidir, batch_first, bias = config
    ours, ref = _pair(kind, layers, bidir, batch_first, bias)
    B, T, D = 3, 6, 2 if bidir else 1
    g = torch.Generator().manual_seed(1)
    x = torch.randn((B, T, 5) if batch_first else (T, B, 5), generator=g)
    h0 = torch.randn(layers * D, B, 7, generator=g)
    hx = (h0, torch.randn(layers * D, B, 7, generator=g)) if kind == "lstm" else h0
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    out_o, st_o = ours(xs[0], hx)
    out_r, st_r = ref(xs[1], hx)
    _close(out_o, out_r)
    for a, b in zip(st_o if kind == "lstm" else [st_o], st_r if kind == "lstm" else [st_r]):
        _close(a, b)
    # gradients of a loss that touches outputs and final states
    w = torch.randn(out_o.shape, generator=g)

    def loss(out, st):
        sts = st if kind == "lstm" else (st,)
        return (out * w).sum() + sum(s.pow(2).sum() for s in sts)

    loss(out_o, st_o).backward()
    loss(out_r, st_r).backward()
    _close(xs[0].grad, xs[1].grad)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, ref_params[name].grad)


@pytest.mark.parametrize("kind", KINDS)
def test_double_precision_agrees_to_1e10(kind):
    ours, ref = _pair(kind, 2, True, True, True)
    ours, ref = ours.double(), ref.double()
    x = torch.randn(4, 9, 5, dtype=torch.float64)
    _close(ours(x)[0], ref(x)[0], tol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_input_and_default_state(kind):
    ours, ref = _pair(kind, 2, True, True, True)
    x = torch.randn(6, 5)  # (T, I) unbatched
    out_o, st_o = ours(x)
    out_r, st_r = ref(x)
    _close(out_o, out_r)
    if kind == "lstm":
        _close(st_o[0], st_r[0])
        _close(st_o[1], st_r[1])
    else:
        _close(st_o, st_r)


@pytest.mark.parametrize("kind,bidir", list(itertools.product(KINDS, [False, True])))
def test_lengths_match_packed_sequences(kind, bidir):
    ours, ref = _pair(kind, 2, bidir, True, True)
    x = torch.randn(4, 8, 5)
    lengths = torch.tensor([8, 3, 5, 1])
    out_o, st_o = ours(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_p, st_r = ref(packed)
    out_r, _ = torch.nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True, total_length=8)
    _close(out_o, out_r)
    for a, b in zip(st_o if kind == "lstm" else [st_o], st_r if kind == "lstm" else [st_r]):
        _close(a, b)


@pytest.mark.parametrize("kind", CELLS)
def test_cells_match_torch(kind):
    ours_cls, ref_cls = CELLS[kind]
    torch.manual_seed(0)
    ref = ref_cls(5, 7)
    ours = ours_cls(5, 7)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    h = torch.randn(3, 7)
    hx = (h, torch.randn(3, 7)) if kind == "lstm" else h
    o, r = ours(x, hx), ref(x2, hx)
    o_s, r_s = (o, r) if kind == "lstm" else ((o,), (r,))
    for a, b in zip(o_s, r_s):
        _close(a, b)
    sum(s.sum() for s in o_s).backward()
    sum(s.sum() for s in r_s).backward()
    _close(x.grad, x2.grad)
    _close(ours.weight_hh.grad, ref.weight_hh.grad)
    # unbatched
    u_o, u_r = ours(x[0].detach()), ref(x2[0].detach())
    for a, b in zip(u_o if kind == "lstm" else [u_o], u_r if kind == "lstm" else [u_r]):
        _close(a, b)


def test_relu_rnn_matches_torch():
    ours, ref = _pair("rnn", 2, False, True, True, nonlinearity="relu")
    x = torch.randn(2, 5, 5)
    _close(ours(x)[0], ref(x)[0])


def test_state_dict_loads_both_ways():
    ours = dnn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    ref = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 4)
    _close(ours(x)[0], ref(x)[0])


def test_default_init_range_matches_torch():
    m = dnn.GRU(3, 16)
    for p in m.parameters():
        assert p.abs().max() <= 1 / 4 + 1e-7


def test_forget_gate_bias():
    m = dnn.LSTM(3, 4, num_layers=2)
    dnn.init_forget_gate_bias_(m, 6.0)
    for layer in range(2):
        total = getattr(m, f"bias_ih_l{layer}") + getattr(m, f"bias_hh_l{layer}")
        assert torch.allclose(total[4:8], torch.full((4,), 6.0))
    # the forget gate starts near 1: the cell state decays by at most 1% per step with zero input
    x = torch.zeros(1, 1, 3)
    ref = torch.nn.LSTM(3, 4, batch_first=True)
    dnn.init_forget_gate_bias_(ref, 6.0)  # torch's LSTM has the same layout
    assert torch.allclose(ref.bias_ih_l0[4:8], torch.full((4,), 6.0))
    cell = dnn.LSTMCell(3, 4)
    dnn.init_forget_gate_bias_(cell, 6.0)
    c0 = torch.ones(1, 4)
    with torch.no_grad():
        cell.weight_hh.zero_()
        _, c1 = cell(x[:, 0], (torch.zeros(1, 4), c0))
    assert (c1 - c0).abs().max() < 0.5  # f ~ sigmoid(6) = 0.9975 keeps c; i*g adds < 0.5
    with pytest.raises(ValueError, match="no LSTM"):
        dnn.init_forget_gate_bias_(dnn.GRU(3, 4), 1.0)
    with pytest.raises(ValueError, match="value must be finite"):
        dnn.init_forget_gate_bias_(m, float("nan"))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        dnn.LSTM(3, 0)
    with pytest.raises(ValueError, match="input_size"):
        dnn.GRUCell(-1, 3)
    with pytest.raises(ValueError, match="num_layers"):
        dnn.GRU(3, 4, num_layers=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.5"):
        dnn.RNN(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        dnn.RNN(3, 4, nonlinearity="sigmoid")
    m = dnn.GRU(3, 4, batch_first=True)
    with pytest.raises(ValueError, match="input_size=3"):
        m(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="initial state must have shape"):
        m(torch.randn(2, 5, 3), torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="lengths must lie in"):
        m(torch.randn(2, 5, 3), lengths=torch.tensor([6, 2]))
    with pytest.raises(ValueError, match="hx must be a pair"):
        dnn.LSTM(3, 4)(torch.randn(2, 5, 3), (torch.zeros(1, 2, 4),))


def test_repr_shows_hyperparameters():
    assert "num_layers=2" in repr(dnn.LSTM(3, 4, num_layers=2, bidirectional=True))
    assert "bidirectional=True" in repr(dnn.LSTM(3, 4, bidirectional=True))
    assert "3, 4" in repr(dnn.GRUCell(3, 4))


def test_dropout_between_layers_only_in_training():
    m = dnn.GRU(3, 8, num_layers=2, dropout=0.5)
    x = torch.randn(2, 4, 3)
    m.eval()
    a, b = m(x)[0], m(x)[0]
    _close(a, b)
    m.train()
    torch.manual_seed(0)
    c = m(x)[0]
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("D", [1, 2])
def test_lstm_sequence_backward_passes_gradcheck(D):
    # the hand-written backpropagation through time of the whole-sequence LSTM against finite differences
    # (and, for gradgradcheck, the create_graph path through the step equations)
    from dlterms.nn.recurrent import _LSTMSequence

    T, B, H = 4, 3, 2
    g = torch.Generator().manual_seed(0)
    inputs = [
        torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_(True)
        for shape in ((T, D, B, 4 * H), (D, B, H), (D, B, H), (D, 4 * H, H))
    ]
    assert torch.autograd.gradcheck(_LSTMSequence.apply, inputs)
    assert torch.autograd.gradgradcheck(_LSTMSequence.apply, inputs)


@pytest.mark.parametrize("bidir", [False, True])
def test_lstm_initial_state_gradients_match_torch(bidir):
    ours, ref = _pair("lstm", 2, bidir, True, True)
    D = 2 if bidir else 1
    x = torch.randn(3, 6, 5)
    g = torch.Generator().manual_seed(2)
    states = [[torch.randn(2 * D, 3, 7, generator=g) for _ in range(2)] for _ in range(2)]
    states[1] = [s.clone() for s in states[0]]
    for st in states:
        for s in st:
            s.requires_grad_(True)
    for m, (h0, c0) in ((ours, states[0]), (ref, states[1])):
        out, (hn, cn) = m(x, (h0, c0))
        (out.sin().sum() + hn.pow(2).sum() + cn.sum()).backward()
    for a, b in zip(states[0], states[1]):
        _close(a.grad, b.grad)


def test_lstm_gradient_of_gradient_and_torch_func_match_torch():
    # create_graph=True differentiates the step equations; torch.func transforms use the step loop
    ours, ref = _pair("lstm", 1, True, True, True)
    x = torch.randn(2, 5, 5)
    penalties = []
    for m in (ours, ref):
        xg = x.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(m(xg)[0].pow(2).sum(), xg, create_graph=True)
        gx.pow(2).sum().backward()  # a gradient penalty: differentiates the gradient
        penalties.append((gx.detach(), m.weight_hh_l0.grad.clone()))
    for a, b in zip(*penalties):
        _close(a, b)
    # per-example input gradients with torch.func.vmap(grad(...))
    per_example = [torch.func.vmap(torch.func.grad(lambda xi, m=m: m(xi[None])[0].sum()))(x) for m in (ours, ref)]
    _close(*per_example)
