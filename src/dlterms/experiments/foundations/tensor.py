"""Tensor: the from-scratch `dlterms.autograd.Tensor` shown at ranks 0 to 4 and checked against torch.

1. Rank examples, each a tensor a network really uses: a scalar loss (rank 0), a bias vector (1), a
   weight matrix (2), a batch of sequences (batch, time, channels) (3), and a batch of 8x8 digit
   images (batch, channels, height, width) (4).
2. Broadcasting and reductions: 300 random cases (the spec asks >= 200). Each draws a result shape of
   rank 0-4 and two operand shapes that broadcast to it (one keeps every axis; the other may lose
   leading axes; either may have axes of size 1), an
   elementwise op (+, -, *, /), then a reduction (sum, mean or max over a random set of axes, with or
   without keepdims), and backpropagates a random upstream gradient. Values, shapes and both operands'
   gradients must agree with torch (float64, relative 1e-10). 30 incompatible shape pairs must be
   refused by both.

Thresholds: docs/experiments.md#tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.autograd import Tensor
from dlterms.data.datasets import digits
from dlterms.run import Run, experiment

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


RTOL, ATOL = 1e-10, 1e-12  # agreement with torch in float64


@dataclass(frozen=True)
class Config:
    """Parameters of the tensor experiment; the defaults are the recorded run."""

    n_cases: int = 300  # random broadcasting + reduction cases
    n_incompatible: int = 30  # shape pairs that must not broadcast
    max_rank: int = 4  # largest rank of a case's result
    max_side: int = 5  # largest size of an axis

    def __post_init__(self) -> None:
        if self.n_cases < 1 or self.n_incompatible < 1:
            raise ValueError(
                f"n_cases and n_incompatible must be >= 1, got {self.n_cases!r} and {self.n_incompatible!r}"
            )
        if self.max_rank < 1 or self.max_side < 3:
            raise ValueError(
                f"max_rank must be >= 1 and max_side >= 3 (sizes 2 and 3 clash), got {self.max_rank!r} and "
                f"{self.max_side!r}"
            )


def _operand_shape(rng: np.random.Generator, out: tuple[int, ...], full_rank: bool) -> tuple[int, ...]:
    """A shape that broadcasts to `out`: drop some leading axes (unless `full_rank`), set some others to 1."""
    keep = len(out) if full_rank else rng.integers(0, len(out) + 1)
    shape = list(out[len(out) - keep :])
    for i in range(len(shape)):
        if rng.random() < 0.35:
            shape[i] = 1
    return tuple(shape)


def _case(rng: np.random.Generator, cfg: Config) -> dict:
    rank = int(rng.integers(0, cfg.max_rank + 1))
    out = tuple(int(s) for s in rng.integers(1, cfg.max_side + 1, rank))
    sa, sb = _operand_shape(rng, out, True), _operand_shape(rng, out, False)
    if rng.random() < 0.5:
        sa, sb = sb, sa
    op = str(rng.choice(list(OPS)))
    reduction = str(rng.choice(["sum", "mean", "max"]))
    rank = max(len(sa), len(sb))  # both operands may have dropped leading axes
    axes = None
    if rank and rng.random() < 0.75:
        k = int(rng.integers(1, rank + 1))
        axes = tuple(int(a) - (rank if rng.random() < 0.5 else 0) for a in rng.choice(rank, k, replace=False))
    return {"a": sa, "b": sb, "op": op, "reduction": reduction, "axes": axes, "keepdims": bool(rng.random() < 0.5)}


def _torch_reduce(t: torch.Tensor, reduction: str, axes, keepdims: bool) -> torch.Tensor:
    if reduction == "max":
        return t.amax(dim=axes if axes is not None else (), keepdim=keepdims)
    if axes is None:
        r = t.sum() if reduction == "sum" else t.mean()
        return r.reshape([1] * t.dim()) if keepdims else r
    return t.sum(dim=axes, keepdim=keepdims) if reduction == "sum" else t.mean(dim=axes, keepdim=keepdims)


def run_case(case: dict, rng: np.random.Generator, rtol: float, atol: float) -> tuple[bool, float]:
    """(agrees, largest absolute difference) between our Tensor and torch on one case."""
    a = rng.standard_normal(case["a"])
    b = rng.standard_normal(case["b"])
    b = np.sign(b) * (np.abs(b) + 0.5)  # denominators away from 0
    if case["reduction"] == "max":
        a, b = np.round(a * 2) / 2, np.round(b * 2) / 2  # coarse values: tied maxima share the gradient
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    ra = torch.tensor(a, requires_grad=True)
    rb = torch.tensor(b, requires_grad=True)
    f = OPS[case["op"]]
    ours = getattr(f(ta, tb), case["reduction"])(axis=case["axes"], keepdims=case["keepdims"])
    ref = _torch_reduce(f(ra, rb), case["reduction"], case["axes"], case["keepdims"])
    if ours.shape != tuple(ref.shape):
        return False, float("inf")
    upstream = rng.standard_normal(ours.shape)
    ours.backward(upstream)
    ref.backward(torch.tensor(upstream))
    pairs = [(ours.data, ref.detach().numpy()), (ta.grad, ra.grad.numpy()), (tb.grad, rb.grad.numpy())]
    ok = all(x.shape == y.shape and np.allclose(x, y, rtol=rtol, atol=atol) for x, y in pairs)
    diff = max(float(np.max(np.abs(x - y), initial=0.0)) for x, y in pairs)
    return ok, diff


def _refused(fn) -> bool:
    try:
        fn()
    except (ValueError, RuntimeError):
        return True
    return False


@experiment("tensor", config=Config)
def tensor(run: Run, cfg: Config) -> None:
    rng = run.rng(0)

    # 1. Ranks 0 to 4.
    images = digits(images=True).x_train[:32].numpy()  # (32, 1, 8, 8)
    examples = {
        "scalar loss": Tensor(rng.standard_normal((4, 3))).mean(),
        "bias vector": Tensor(np.zeros(16)),
        "weight matrix": Tensor(rng.standard_normal((16, 64)) * 0.1),
        "sequence batch (B, T, C)": Tensor(rng.standard_normal((8, 20, 4))),
        "image batch (B, C, H, W)": Tensor(images),
    }
    ranks = {name: t.ndim for name, t in examples.items()}
    for name, t in examples.items():
        run.metric(f"shape {name}", list(t.shape))
    run.check(
        "examples of rank 0, 1, 2, 3 and 4",
        sorted(ranks.values()) == [0, 1, 2, 3, 4],
        observed=sorted(ranks.values()),
        expected="[0, 1, 2, 3, 4]",
    )

    # 2. Random broadcasting + reduction cases against torch.
    agree, diffs, out_ranks = 0, [], []
    for i in range(cfg.n_cases):
        case = _case(rng, cfg)
        ok, diff = run_case(case, rng, RTOL, ATOL)
        agree += ok
        diffs.append(diff)
        out_ranks.append(max(len(case["a"]), len(case["b"])))
        if (i + 1) % 50 == 0:
            run.progress(0.1 + 0.8 * (i + 1) / cfg.n_cases, f"{i + 1} cases")
    run.metric("cases_agreeing_with_torch", agree, key=True)
    run.metric("max_abs_difference", max(diffs))
    run.metric("cases_per_rank", {r: out_ranks.count(r) for r in range(cfg.max_rank + 1)})
    run.check(
        "broadcasting + reductions (values, shapes, gradients) agree with torch on every random case",
        agree == cfg.n_cases and agree >= 200,
        observed=f"{agree}/{cfg.n_cases}",
        expected=f"{cfg.n_cases}/{cfg.n_cases}, >= 200",
    )

    refused = 0
    for _ in range(cfg.n_incompatible):
        rank = int(rng.integers(1, cfg.max_rank + 1))
        sa = [int(s) for s in rng.integers(1, cfg.max_side + 1, rank)]
        sb = list(sa)
        axis = int(rng.integers(0, rank))
        sa[axis], sb[axis] = 2, 3  # sizes 2 and 3 on one axis never broadcast
        a, b = np.ones(sa), np.ones(sb)
        refused += _refused(lambda a=a, b=b: Tensor(a) + Tensor(b)) and _refused(
            lambda a=a, b=b: torch.tensor(a) + torch.tensor(b)
        )
    run.metric("incompatible_shapes_refused_by_both", refused)
    run.check(
        "incompatible shapes are refused, as torch refuses them",
        refused == cfg.n_incompatible,
        observed=f"{refused}/{cfg.n_incompatible}",
        expected=f"{cfg.n_incompatible}/{cfg.n_incompatible}",
    )

    with run.figure(
        "broadcasting",
        alt="a (3, 1) column plus a (1, 4) row broadcast to a (3, 4) matrix; the "
        "column's gradient is the row sums of the upstream gradient; right: differences from torch "
        "per case",
        figsize=(11, 3.6),
    ) as fig:
        axes = fig.subplots(1, 5, width_ratios=[1, 4, 4, 1, 6])
        col = Tensor(np.array([[1.0], [2.0], [3.0]]), requires_grad=True)
        row = Tensor(np.array([[10.0, 20.0, 30.0, 40.0]]), requires_grad=True)
        s = col + row
        s.backward(np.ones(s.shape))
        panels = [
            (col.data, "a (3, 1)"),
            (row.data, "b (1, 4)"),
            (s.data, "a + b (3, 4)"),
            (col.grad, "dL/da, dL/d(a+b) = 1"),
        ]
        for ax, (m, title) in zip(axes[:4], panels, strict=True):
            ax.imshow(m, cmap="Blues", vmin=0, vmax=60)
            for (r, c), v in np.ndenumerate(m):
                ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=8)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        ax = axes[4]
        d = np.maximum(np.array(diffs), 1e-18)
        ax.hist(np.log10(d), bins=30, color="tab:blue")
        ax.set_xlabel("log10 max |ours - torch| per case (identical: -18)")
        ax.set_ylabel("cases")
        ax.set_title(f"{agree}/{cfg.n_cases} random cases agree", fontsize=9)
