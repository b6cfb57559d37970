"""Our optimisers, cross-entropy and clipping against torch's, at the experiment sizes and 10x.

SparseAdam is timed on the word-embeddings experiment's embedding table with a fixed sparse gradient,
softmax forward and backward on attention scores.

Optimiser steps are timed on the parameters of an MLP with fixed gradients (the optimiser's own cost,
no forward or backward). The experiment size is the optimizer experiment's 40-128-128-10 MLP (23 k
parameters); 10x widens it to about ten times the parameters. Cross-entropy is timed forward and
backward on a batch of logits (the experiments use batch 128 over 10 classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks._harness import Case
from dlterms import losses, optim


def _params(width: int, seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(width, 40), (width,), (width, width), (width,), (10, width), (10,)]
    ps = [torch.nn.Parameter(torch.randn(s, generator=g) * 0.1) for s in shapes]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g) * 0.01
    return ps


def _optimizer_case(name: str, kw: dict, width: int, label: str) -> Case:
    ours = getattr(optim, name)(_params(width), **kw)
    ref = getattr(torch.optim, name)(_params(width), **kw)

    def diff() -> float:
        a = getattr(optim, name)(pa := _params(width), **kw)
        b = getattr(torch.optim, name)(pb := _params(width), **kw)
        for _ in range(10):
            a.step()
            b.step()
        return max(float((x - y).abs().max()) for x, y in zip(pa, pb))

    n = sum(p.numel() for p in _params(width))
    args = ", ".join(f"{k}={v}" for k, v in kw.items())
    return Case(f"{name}({args}).step", f"{n / 1e3:.0f} k params ({label})", ours.step, ref.step, diff=diff)


def _ce_case(batch: int, label: str, **kw) -> Case:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(batch, 10, generator=g, requires_grad=True)
    y = torch.randint(0, 10, (batch,), generator=g)

    def run(fn):
        def call():
            z.grad = None
            fn(z, y, **kw).backward()

        return call

    extra = f", {', '.join(f'{k}={v}' for k, v in kw.items())}" if kw else ""

    def diff() -> float:
        return float((losses.cross_entropy(z, y, **kw) - F.cross_entropy(z, y, **kw)).abs())

    note = (
        (
            "our autograd.Function makes about fifteen small tensor calls from Python (log-sum-exp, gather, where, "
            "sums; softmax minus target backward) where torch runs two fused kernels: at 128 x 10 that fixed cost "
            "is most of the time"
        )
        if batch <= 128
        else ""
    )
    return Case(
        f"cross_entropy fwd+bwd{extra}",
        f"B={batch} C=10 ({label})",
        run(losses.cross_entropy),
        run(F.cross_entropy),
        diff=diff,
        note=note,
    )


def _clip_case(width: int, label: str) -> Case:
    ours_p, ref_p = _params(width), _params(width)
    for p in ours_p + ref_p:
        p.grad.mul_(1e3)  # large enough that clipping always scales

    def diff() -> float:
        a, b = _params(width), _params(width)
        optim.clip_grad_norm_(a, 1.0)
        torch.nn.utils.clip_grad_norm_(b, 1.0)
        return max(float((x.grad - y.grad).abs().max()) for x, y in zip(a, b))

    n = sum(p.numel() for p in ours_p)
    return Case(
        "clip_grad_norm_",
        f"{n / 1e3:.0f} k params ({label})",
        lambda: optim.clip_grad_norm_(ours_p, 1.0),
        lambda: torch.nn.utils.clip_grad_norm_(ref_p, 1.0),
        diff=diff,
    )


def _sparse_adam_case(n_idx: int, label: str) -> Case:
    """SparseAdam on the word-embeddings experiment's table (V=3114, d=64) with a fixed sparse gradient
    of `n_idx` looked-up rows (repeats included, uncoalesced as an embedding's backward leaves it)."""
    V, d = 3114, 64

    def make(cls):
        g = torch.Generator().manual_seed(2)
        w = torch.nn.Parameter(torch.randn(V, d, generator=g) * 0.1)
        idx = torch.randint(0, V, (n_idx,), generator=g)
        w.grad = torch.sparse_coo_tensor(idx[None], torch.randn(n_idx, d, generator=g) * 0.01, (V, d))
        return cls([w], lr=0.01), w

    (ours, _), (ref, _) = make(optim.SparseAdam), make(torch.optim.SparseAdam)

    def diff() -> float:
        (a, wa), (b, wb) = make(optim.SparseAdam), make(torch.optim.SparseAdam)
        for _ in range(10):
            a.step()
            b.step()
        return float((wa - wb).abs().max())

    return Case(
        "SparseAdam(lr=0.01).step", f"V={V} d={d}, {n_idx} rows looked up ({label})", ours.step, ref.step, diff=diff
    )


def _softmax_case(shape: tuple[int, ...], label: str) -> Case:
    """softmax over the last dimension, forward and backward, on attention scores (B*heads, T, T)."""
    from dlterms.nn import softmax

    z = torch.randn(*shape, generator=torch.Generator().manual_seed(3), requires_grad=True)
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(4))

    def run(fn):
        def call():
            z.grad = None
            (fn(z, dim=-1) * w).sum().backward()

        return call

    def diff() -> float:
        return float((softmax(z, dim=-1) - torch.softmax(z, dim=-1)).abs().max())

    note = ""
    if shape[-1] >= 32:
        note = (
            "ours makes five passes over the scores forward (max, subtract, exp, sum, divide) and three "
            "backward, torch's fused kernel one each way; on rows of 12 torch's kernel is the slower one"
        )
    return Case("softmax fwd+bwd", f"{tuple(shape)} ({label})", run(softmax), run(torch.softmax), diff=diff, note=note)


def cases() -> list[Case]:
    out = []
    for width, label in ((128, "experiment"), (430, "10x")):
        out += [
            _optimizer_case("Adam", {"lr": 1e-3}, width, label),
            _optimizer_case("SGD", {"lr": 0.1, "momentum": 0.9}, width, label),
            _clip_case(width, label),
        ]
    for n_idx, label in ((7168, "experiment"), (71680, "10x")):
        out.append(_sparse_adam_case(n_idx, label))
    for batch, label in ((128, "experiment"), (1280, "10x")):
        out += [_ce_case(batch, label), _ce_case(batch, label, label_smoothing=0.1)]
    # attention scores of the attention-mechanisms experiment: batch 64, 4 heads, 12 positions
    # and of the BERT experiment (MiniLM: batch 64, 12 heads, 32 tokens), where rows are longer
    for shape, label in (
        ((256, 12, 12), "attention-mechanisms experiment"),
        ((2560, 12, 12), "10x"),
        ((768, 32, 32), "BERT experiment"),
        ((7680, 32, 32), "10x"),
    ):
        out.append(_softmax_case(shape, label))
    return out
