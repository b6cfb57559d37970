"""Every hand-written backward (the autograd.Functions of dlterms.nn and dlterms.losses) against torch under
the ways a training loop uses gradients, in float64: accumulation over two backward passes,
zero_grad(set_to_none=False) then backward, clip_grad_norm_, retain_graph, a module used twice in one
graph, and parameters tied between modules. After each, no two parameters' `.grad` may share memory.

Issue 22 found that the LSTM's and RNN's bias_ih and bias_hh gradients were one buffer: a single
backward was right, but every in-place operation on the gradients then hit that buffer twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

import dlterms.nn as dnn
from dlterms.losses import cross_entropy
from dlterms.optim import clip_grad_norm_

DT = torch.float64
RTOL, ATOL = 1e-10, 1e-12  # float64: the two implementations differ only in summation order


@dataclass
class Case:
    build: Callable[[str], torch.nn.Module]  # "ours" or "torch" -> a module with the same parameter names
    inputs: Callable[[torch.Generator], tuple]  # float tensors become leaves that require grad
    forward: Callable[..., tuple]  # (model, *inputs) -> tensors the loss weighs


# --------------------------------------------------------------------------- the cases


def _recurrent(kind, layers=2, bidir=True, bias=True, T=5, B=3, batch_first=False, **kw):
    I, H = 4, 6
    D = 2 if bidir else 1
    classes = {"lstm": (dnn.LSTM, torch.nn.LSTM), "gru": (dnn.GRU, torch.nn.GRU), "rnn": (dnn.RNN, torch.nn.RNN)}

    def build(impl):
        cls = classes[kind][impl == "torch"]
        return cls(I, H, num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidir, **kw)

    def inputs(g):
        x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g, dtype=DT)
        states = [torch.randn(layers * D, B, H, generator=g, dtype=DT) for _ in range(2 if kind == "lstm" else 1)]
        return (x, *states)

    def forward(m, x, *states):
        out, hn = m(x, tuple(states) if kind == "lstm" else states[0])
        return (out, *hn) if kind == "lstm" else (out, hn)

    return Case(build, inputs, forward)


def _frozen(case: Case, *names: str) -> Case:
    """The same case with some parameters frozen (requires_grad=False)."""

    def build(impl):
        m = case.build(impl)
        for name in names:
            m.get_parameter(name).requires_grad_(False)
        return m

    return Case(build, case.inputs, case.forward)


class _TiedLSTMs(torch.nn.Module):
    """Two stacked LSTMs sharing parameters across roles: the second's W_ih is the first's W_hh, and both
    use one b_hh. A shared parameter receives gradient through the bias sum and the weight path at once."""

    def __init__(self, cls):
        super().__init__()
        self.a, self.b = cls(6, 6), cls(6, 6)
        self.b.weight_ih_l0 = self.a.weight_hh_l0
        self.b.bias_hh_l0 = self.a.bias_hh_l0

    def forward(self, x):
        return self.b(self.a(x)[0])[0]


def _tied_lstms():
    return Case(
        lambda impl: _TiedLSTMs(torch.nn.LSTM if impl == "torch" else dnn.LSTM),
        lambda g: (torch.randn(5, 3, 6, generator=g, dtype=DT),),
        lambda m, x: (m(x),),
    )


def _module(ours_cls, ref_cls, shape, *args, **kw):
    return Case(
        lambda impl: (ref_cls if impl == "torch" else ours_cls)(*args, **kw),
        lambda g: (torch.randn(*shape, generator=g, dtype=DT),),
        lambda m, x: (m(x),),
    )


class _Head(torch.nn.Module):
    """torch's Linear feeding a function (ours or torch's): the function's backward reaches the Linear's
    parameters and the input."""

    def __init__(self, fn, n_in=6, n_out=5):
        super().__init__()
        self.lin, self.fn = torch.nn.Linear(n_in, n_out), fn

    def forward(self, x, *rest):
        return self.fn(self.lin(x), *rest)


def _softmax_case():
    fns = {"ours": lambda z: dnn.softmax(z, dim=-1), "torch": lambda z: torch.softmax(z, dim=-1)}
    return Case(
        lambda impl: _Head(fns[impl]),
        lambda g: (torch.randn(4, 3, 6, generator=g, dtype=DT),),
        lambda m, x: (m(x),),
    )


def _cross_entropy_case(**kw):
    w = torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0], dtype=DT) if kw.pop("weighted", False) else None
    fns = {
        "ours": lambda z, y: cross_entropy(z, y, weight=w, **kw),
        "torch": lambda z, y: F.cross_entropy(z, y, weight=w, **kw),
    }

    def inputs(g):
        y = torch.randint(0, 5, (8,), generator=g)
        y[3] = -100  # an ignored row
        return torch.randn(8, 6, generator=g, dtype=DT), y

    return Case(lambda impl: _Head(fns[impl]), inputs, lambda m, x, y: (m(x, y),))


def _embedding_case():
    return Case(
        lambda impl: (torch.nn.Embedding if impl == "torch" else dnn.Embedding)(10, 4, padding_idx=0),
        lambda g: (torch.randint(0, 10, (5, 3), generator=g),),
        lambda m, idx: (m(idx),),
    )


class _TiedEmbedding(torch.nn.Module):
    """A language model's tied input and output tables: decoder.weight is encoder.weight."""

    def __init__(self, emb_cls):
        super().__init__()
        self.encoder = emb_cls(10, 4)
        self.decoder = torch.nn.Linear(4, 10)
        self.decoder.weight = self.encoder.weight

    def forward(self, idx):
        return self.decoder(self.encoder(idx))


def _tied_embedding_case():
    return Case(
        lambda impl: _TiedEmbedding(torch.nn.Embedding if impl == "torch" else dnn.Embedding),
        lambda g: (torch.randint(0, 10, (5, 3), generator=g),),
        lambda m, idx: (m(idx),),
    )


CASES = {
    "LSTM 2 layers bidirectional": _recurrent("lstm"),
    "LSTM batch_first": _recurrent("lstm", layers=1, bidir=False, batch_first=True),
    "LSTM T=1 B=1": _recurrent("lstm", layers=1, bidir=False, T=1, B=1),
    "LSTM T=1 B=1 bidirectional": _recurrent("lstm", layers=1, T=1, B=1),
    "LSTM no bias": _recurrent("lstm", bias=False),
    "LSTM frozen b_hh and reverse W_ih": _frozen(_recurrent("lstm"), "bias_hh_l0", "weight_ih_l1_reverse"),
    "LSTMs with tied parameters": _tied_lstms(),
    "RNN 2 layers bidirectional": _recurrent("rnn"),
    "RNN relu T=1 B=1": _recurrent("rnn", layers=1, bidir=False, T=1, B=1, nonlinearity="relu"),
    "GRU 2 layers bidirectional": _recurrent("gru"),
    "GRU T=1 B=1": _recurrent("gru", layers=1, bidir=False, T=1, B=1),
    "BatchNorm1d": _module(dnn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 4, 5), 4),
    "BatchNorm2d": _module(dnn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 5), 3),
    "LayerNorm": _module(dnn.LayerNorm, torch.nn.LayerNorm, (3, 5, 8), 8),
    "LayerNorm over two dims": _module(dnn.LayerNorm, torch.nn.LayerNorm, (3, 5, 8), (5, 8)),
    "Conv1d": _module(dnn.Conv1d, torch.nn.Conv1d, (2, 3, 11), 3, 4, 3, stride=2, padding=1),
    "Conv2d": _module(dnn.Conv2d, torch.nn.Conv2d, (2, 3, 7, 7), 3, 4, 3, padding=1),
    "Conv2d groups": _module(dnn.Conv2d, torch.nn.Conv2d, (2, 4, 6, 6), 4, 6, 3, groups=2, bias=False),
    "softmax": _softmax_case(),
    "cross_entropy": _cross_entropy_case(),
    "cross_entropy weighted, smoothed": _cross_entropy_case(weighted=True, label_smoothing=0.1),
    "Embedding": _embedding_case(),
    "Embedding tied to a Linear": _tied_embedding_case(),
}


# --------------------------------------------------------------------------- the procedures


def _loss(outs: tuple, k: int) -> torch.Tensor:
    """A fixed random weighting of the outputs (the k-th of several), so that every gradient entry differs."""
    g = torch.Generator().manual_seed(1000 + k)
    return sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)


def _clip_torch(params, max_norm):
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


def _clip_ours(params, max_norm):
    return clip_grad_norm_(params, max_norm)


def _procedure(name, model, case, xs, clip):
    f = case.forward
    if name == "one backward":
        _loss(f(model, *xs[0]), 0).backward()
    elif name == "two backward passes accumulate":
        _loss(f(model, *xs[0]), 0).backward()
        _loss(f(model, *xs[1]), 1).backward()
    elif name == "zero_grad(set_to_none=False) then backward":
        _loss(f(model, *xs[0]), 0).backward()
        model.zero_grad(set_to_none=False)
        for x in xs[1]:
            if x.grad is not None:
                x.grad.zero_()
        _loss(f(model, *xs[1]), 1).backward()
    elif name in ("clip_grad_norm_", "accumulate then clip_grad_norm_"):
        _loss(f(model, *xs[0]), 0).backward()
        if name.startswith("accumulate"):
            _loss(f(model, *xs[1]), 1).backward()
        params = [p for p in model.parameters() if p.grad is not None]
        total = clip(params, 0.05)
        assert float(total) > 0.1, "the clip must be active for the test to mean anything"
    elif name == "retain_graph":
        outs = f(model, *xs[0])
        _loss(outs, 0).backward(retain_graph=True)
        _loss(outs, 1).backward()
    elif name == "used twice in one graph":
        (_loss(f(model, *xs[0]), 0) + _loss(f(model, *xs[1]), 1)).backward()
    else:
        raise AssertionError(name)


PROCEDURES = [
    "one backward",
    "two backward passes accumulate",
    "zero_grad(set_to_none=False) then backward",
    "clip_grad_norm_",
    "accumulate then clip_grad_norm_",
    "retain_graph",
    "used twice in one graph",
]


def _leaves(t: tuple) -> tuple:
    return tuple(x.clone().requires_grad_(True) if x.is_floating_point() else x for x in t)


def _run(case: Case, name: str):
    torch.manual_seed(0)
    ref = case.build("torch").to(DT)
    ours = case.build("ours").to(DT)
    ours.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(7)
    xs = [case.inputs(g) for _ in range(2)]
    results = []
    for model, clip in ((ours, _clip_ours), (ref, _clip_torch)):
        leaves = [_leaves(x) for x in xs]
        _procedure(name, model, case, leaves, clip)
        grads = {n: p.grad for n, p in model.named_parameters()}
        inputs = [x.grad for x in leaves[0] + leaves[1] if x.is_floating_point()]
        results.append((grads, inputs))
    return ours, results


@pytest.mark.parametrize("name", PROCEDURES)
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_gradients_equal_torchs(case, name):
    ours, ((g_o, x_o), (g_r, x_r)) = _run(CASES[case], name)
    assert g_o.keys() == g_r.keys()
    assert any(g is not None for g in g_o.values())
    for n in g_o:
        if g_r[n] is None:
            assert g_o[n] is None, n
            continue
        torch.testing.assert_close(g_o[n], g_r[n], rtol=RTOL, atol=ATOL, msg=lambda m, n=n: f"{n}: {m}")
    for a, b in zip(x_o, x_r):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["one backward", "two backward passes accumulate", "used twice in one graph"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_no_two_parameters_share_gradient_memory(case, name):
    ours, _ = _run(CASES[case], name)
    owners: dict[int, str] = {}
    for n, p in ours.named_parameters():  # a tied parameter appears once
        if p.grad is None:
            continue
        ptr = p.grad.untyped_storage().data_ptr()
        assert ptr not in owners, f"{n}.grad shares its memory with {owners[ptr]}.grad"
        owners[ptr] = n


@pytest.mark.parametrize("cls", [dnn.RNNCell, dnn.LSTMCell, dnn.GRUCell])
@pytest.mark.parametrize("batch", [1, 3])
def test_cells_keep_one_gradient_per_parameter(cls, batch):
    cell = cls(4, 5).to(DT)
    x = torch.randn(batch, 4, dtype=DT)
    for _ in range(2):
        out = cell(x)
        _loss(out if isinstance(out, tuple) else (out,), 0).backward()
    ptrs = [p.grad.untyped_storage().data_ptr() for p in cell.parameters()]
    assert len(set(ptrs)) == len(ptrs)


def test_the_issue_22_symptoms_are_gone():
    # bias_ih_l0.grad and bias_hh_l0.grad were one tensor: a second backward gave 3x instead of 2x,
    # clipping scaled them by coef^2, zero_grad(set_to_none=False) + backward gave 2x
    torch.manual_seed(0)
    m = dnn.LSTM(3, 4).to(DT)
    x = torch.randn(6, 2, 3, dtype=DT)
    m(x)[0].sum().backward()
    once = {n: p.grad.clone() for n, p in m.named_parameters()}
    assert m.bias_ih_l0.grad is not m.bias_hh_l0.grad
    m(x)[0].sum().backward()
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, 2 * once[n], rtol=1e-14, atol=0)
    m.zero_grad(set_to_none=False)
    m(x)[0].sum().backward()
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, once[n], rtol=1e-14, atol=0)
    total = torch.nn.utils.clip_grad_norm_(m.parameters(), 0.01)
    coef = 0.01 / (float(total) + 1e-6)
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, coef * once[n], rtol=1e-13, atol=0)
