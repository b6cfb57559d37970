"""Cross-entropy loss: ours (from log-softmax) against torch's, at extreme logits, and its shape.

Four claims, each measured on its own inputs: (1) `dlterms.losses.cross_entropy` equals
`torch.nn.functional.cross_entropy` to 1e-6 on MNIST-1D-sized random logits, with and without class
weights, label smoothing and ignored targets; (2) logits of +-1000 give the exact finite loss
(2000 for a confidently wrong pair) where the naive log(softmax(z)) gives infinity; (3) the loss is
-log p(true): as the probability of the true class falls from 0.999 to 0.001 the loss rises
monotonically and matches -log p to 1e-6; (4) its gradient with respect to the logits is
softmax(z) - onehot(y) (per example, reduction='sum').
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dlterms.losses import cross_entropy
from dlterms.nn.activations import softmax
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the cross-entropy experiment; the defaults are the recorded run."""

    n_examples: int = 1000  # random logit rows compared with torch
    n_classes: int = 10  # classes of those logits
    logit_scale: float = 4.0  # standard deviation of the random logits
    n_probs: int = 60  # values of p(true) from 0.999 to 0.001
    grad_examples: int = 256  # rows of the gradient check

    def __post_init__(self) -> None:
        if self.n_classes < 4:
            raise ValueError(f"n_classes must be >= 4 (class 3 is the ignored one), got {self.n_classes!r}")
        if self.n_examples < 18 or self.n_probs < 2 or self.grad_examples < 1:
            raise ValueError(
                f"n_examples must be >= 18, n_probs >= 2, grad_examples >= 1, got "
                f"{self.n_examples!r}, {self.n_probs!r}, {self.grad_examples!r}"
            )
        if not self.logit_scale > 0:
            raise ValueError(f"logit_scale must be > 0, got {self.logit_scale!r}")


@experiment("cross-entropy", config=Config)
def cross_entropy_experiment(run: Run, cfg: Config) -> None:
    g = run.generator(1)
    # (1) agreement with torch, float32 as used in training, several option combinations
    z = torch.randn(cfg.n_examples, cfg.n_classes, generator=g) * cfg.logit_scale
    y = torch.randint(0, cfg.n_classes, (cfg.n_examples,), generator=g)
    y[::17] = 3  # some targets to ignore below
    w = torch.rand(cfg.n_classes, generator=g) + 0.5
    options = [{}, {"label_smoothing": 0.1}, {"weight": w}, {"ignore_index": 3, "weight": w, "label_smoothing": 0.2}]
    diffs = []
    for kw in options:
        for reduction in ("mean", "sum", "none"):
            ours = cross_entropy(z, y, reduction=reduction, **kw)
            ref = F.cross_entropy(z, y, reduction=reduction, **kw)
            scale = max(1.0, float(ref.abs().max()))  # sums over 1000 examples are compared relatively
            diffs.append(float((ours - ref).abs().max()) / scale)
    max_diff = max(diffs)
    run.metric("max_rel_diff_vs_torch", max_diff, key=True)
    run.check_le(
        "equals torch.nn.functional.cross_entropy (12 option/reduction combinations)", max_diff, 1e-6, strict=True
    )

    # (2) extreme logits
    big = torch.tensor([[1000.0, -1000.0], [-1000.0, 1000.0], [1000.0, 999.0]])
    yb = torch.tensor([1, 1, 1])
    ours_big = cross_entropy(big, yb, reduction="none")
    naive = -torch.log(torch.softmax(big, 1)).gather(1, yb[:, None]).squeeze(1)
    expected_big = torch.tensor([2000.0, 0.0, 1.0 + math.log1p(math.exp(-1.0))])
    err_big = float((ours_big - expected_big).abs().max())
    run.metric("loss_at_logits_pm1000", ours_big.tolist())
    run.metric("naive_log_softmax_loss", [float(v) for v in naive])
    run.check(
        "stable for logits of +-1000: finite and exact (2000, 0, 1.3133)",
        bool(torch.isfinite(ours_big).all()) and err_big < 1e-3,
        observed=[float(v) for v in ours_big],
        expected="finite, within 1e-3 of exact",
    )
    run.check(
        "the naive log(softmax(z)) is not (it returns inf where ours is finite)",
        bool(torch.isinf(naive).any()),
        observed=[float(v) for v in naive],
        expected="contains inf",
    )

    # (3) loss = -log p(true) as p falls: two-class logits (log p, log(1 - p)) give softmax (p, 1 - p)
    ps = np.geomspace(0.999, 0.001, cfg.n_probs)
    zz = torch.tensor(np.stack([np.log(ps), np.log1p(-ps)], 1), dtype=torch.float64)
    losses = cross_entropy(zz, torch.zeros(len(ps), dtype=torch.long), reduction="none").numpy()
    err_nll = float(np.abs(losses + np.log(ps)).max())
    rising = bool(np.all(np.diff(losses) > 0))
    run.check(
        f"loss rises as p(true) falls ({cfg.n_probs} values from 0.999 to 0.001)",
        rising,
        observed=f"{losses[0]:.4f} -> {losses[-1]:.4f}",
        expected="strictly increasing",
    )
    run.check_le("loss equals -log p(true)", err_nll, 1e-6, strict=True)

    # (4) gradient = softmax - onehot
    zg = (torch.randn(cfg.grad_examples, cfg.n_classes, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    yg = torch.randint(0, cfg.n_classes, (cfg.grad_examples,), generator=g)
    cross_entropy(zg, yg, reduction="sum").backward()
    err_grad = float((zg.grad - (softmax(zg.detach(), 1) - F.one_hot(yg, cfg.n_classes).double())).abs().max())
    run.metric("grad_max_error", err_grad)
    run.check_le("gradient w.r.t. logits is softmax(z) - onehot(y)", err_grad, 1e-6, strict=True)

    with run.figure(
        "loss-vs-p",
        alt="cross-entropy loss against the probability of the true class on a log "
        "axis: it is -log p, near 0 at p = 1 and rising without bound as p falls",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        ax1.plot(ps, losses, label="cross_entropy")
        ax1.plot(ps, -np.log(ps), "k:", label="-log p")
        ax1.set_xscale("log")
        ax1.set_xlabel("p(true class)")
        ax1.set_ylabel("loss")
        ax1.legend()
        ax1.grid(alpha=0.3)
        zs = np.linspace(-6, 6, 200)
        zt = torch.tensor(np.stack([zs, np.zeros_like(zs)], 1), requires_grad=True)
        cross_entropy(zt, torch.zeros(len(zs), dtype=torch.long), reduction="sum").backward()
        ax2.plot(zs, zt.grad[:, 0].numpy(), label="dL/dz_true")
        ax2.plot(zs, zt.grad[:, 1].numpy(), label="dL/dz_other")
        ax2.set_xlabel("logit of the true class (other = 0)")
        ax2.set_ylabel("gradient = softmax - onehot")
        ax2.legend()
        ax2.grid(alpha=0.3)
