"""Our RNN, LSTM and GRU (a Python loop over time steps) against torch's (a C++ loop), forward and
backward, at the sizes the experiments use and with 10x the batch; and the LSTM's evaluation forward
pass (eval mode, with and without torch.no_grad()), also at the size of PyTorch's word_language_model
example (2 layers of 200, 35 steps)."""

from __future__ import annotations

import torch

import dlterms.nn as dnn
from benchmarks._harness import Case

# (name, ours, torch's, input size, hidden, batch, steps, bidirectional, where it is used)
_SIZES = [
    ("RNN", dnn.RNN, torch.nn.RNN, 1, 16, 64, 20, False, "rnn experiment"),
    ("LSTM", dnn.LSTM, torch.nn.LSTM, 9, 32, 32, 55, False, "lstm experiment"),
    ("GRU", dnn.GRU, torch.nn.GRU, 1, 64, 50, 40, False, "sequence-modeling experiment"),
    ("GRU bidirectional", dnn.GRU, torch.nn.GRU, 32, 64, 64, 40, True, "seq2seq encoder"),
]

_NOTE = (
    "ours: input projection hoisted out of the time loop, gates fused into one matmul per step, both "
    "directions stepped together; the loop itself runs in Python, so each step pays ~10 tensor calls' "
    "dispatch and autograd-recording overhead that torch's C++ loop does not"
)
_LSTM_NOTE = (
    "ours: one autograd.Function for the whole sequence (forward loop without a graph, hand-written "
    "backpropagation through time: 7 tensor calls per step forward, 4 backward); what remains is the "
    "Python dispatch of those ~600 calls (~1-3 us each, torch's CPU LSTM runs its loop in C++) and, "
    "at 10x, unfused gate arithmetic over larger per-step tensors (torch.tanh is 6-9x slower "
    "per element than torch.sigmoid here)"
)


def _case(name, ours_cls, ref_cls, I, H, B, T, bidir, label, scale):
    torch.manual_seed(0)
    ref = ref_cls(I, H, batch_first=True, bidirectional=bidir)
    ours = ours_cls(I, H, batch_first=True, bidirectional=bidir)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B * scale, T, I)

    def run(m):
        def go():
            m.zero_grad(set_to_none=True)
            m(x)[0].sum().backward()

        return go

    def diff():
        with torch.no_grad():
            return (ours(x)[0] - ref(x)[0]).abs().max().item()

    size = f"B={B * scale} T={T} I={I} H={H}" + (" bi" if bidir else "")
    size += f" ({label})" if scale == 1 else " (10x)"
    return Case(
        f"{name} fwd+bwd",
        size,
        run(ours),
        run(ref),
        diff=diff,
        reference_name=f"torch.nn.{ref_cls.__name__}",
        note=_LSTM_NOTE if name == "LSTM" else _NOTE,
    )


# Evaluation forward passes of the LSTM (issue 22): (input, hidden, layers, batch, steps, where it is used).
# The model is in eval mode; "no_grad" runs under torch.no_grad(), the other keeps autograd on (the
# parameters require grad, so ours runs its training forward, which keeps the history for backward).
_EVAL_SIZES = [
    (9, 32, 1, 32, 55, "lstm experiment"),
    (9, 32, 1, 320, 55, "10x"),
    (200, 200, 2, 10, 35, "word_language_model eval"),
    (200, 200, 2, 20, 35, "word_language_model train"),
]

_EVAL_NOTE = (
    "ours: under no_grad the same time loop as training without keeping any history (one product and "
    "six element-wise calls per step); torch runs oneDNN's fused LSTM kernel, whose whole loop is one "
    "C++ call. At small sizes what is left is the Python dispatch of ~7 calls per step"
)


def _eval_case(I, H, L, B, T, label, no_grad):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(I, H, L).eval()  # torch's defaults: time major
    ours = dnn.LSTM(I, H, L, batch_first=False).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, I)

    def run(m):
        def go():
            if no_grad:
                with torch.no_grad():
                    return m(x)
            return m(x)

        return go

    def diff():
        with torch.no_grad():
            return (ours(x)[0] - ref(x)[0]).abs().max().item()

    mode = "eval, no_grad" if no_grad else "eval"
    return Case(
        f"LSTM forward ({mode})",
        f"B={B} T={T} I={I} H={H}" + (f" L={L}" if L > 1 else "") + f" ({label})",
        run(ours),
        run(ref),
        diff=diff,
        reference_name="torch.nn.LSTM",
        note=_EVAL_NOTE,
    )


def cases() -> list[Case]:
    return [_case(*s, scale=k) for s in _SIZES for k in (1, 10)] + [
        _eval_case(*s, no_grad=ng) for s in _EVAL_SIZES for ng in (True, False)
    ]
