"""Gradient clipping: the exploding setup trains with clipping and diverges without.

Setup (shared with exploding-gradient, `_common.py`): a 24-layer ReLU MLP with weights 1.5x He-normal
on scikit-learn's digits, SGD at a fixed lr = 0.01, batch 64, 6 epochs, same initial weights and
batches for both runs. With `GradientClipping(max_norm=1.0)` (our `clip_grad_norm_` after every
backward) the loss must stay finite and fall from every epoch to the next; without it the loss must
become non-finite (the spec). Our clipping functions are also checked against torch's
`clip_grad_norm_`/`clip_grad_value_` on this network's own (huge) gradients. Clipping by value
(|g_i| <= 0.01) is run too and reported: it also prevents the blow-up here, but changes the
gradient's direction.

Thresholds: docs/experiments.md#gradient-clipping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.experiments.training._common import ExplodingConfig, exploding_mlp
from dlterms.losses import cross_entropy
from dlterms.optim import SGD, clip_grad_norm_, clip_grad_value_
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import GradientClipping, accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the gradient-clipping experiment; the defaults are the recorded run."""

    max_norm: float = 1.0  # clipping threshold c of the global L2 norm
    clip_value: float = 0.01  # element-wise clipping threshold of the value-clipping arm
    depth: int = 24  # weight layers of the exploding ReLU MLP
    scale: float = 1.5  # weights = scale x He-normal (> 1: the gradient explodes)
    lr: float = 1e-2  # fixed SGD learning rate
    epochs: int = 6  # training epochs
    batch_size: int = 64  # mini-batch size

    def __post_init__(self) -> None:
        for name in ("max_norm", "clip_value", "scale", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.depth < 2 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"depth must be >= 2, epochs and batch_size >= 1, got "
                f"{self.depth!r}, {self.epochs!r}, {self.batch_size!r}"
            )


@experiment(
    "gradient-clipping",
    config=Config,
    sweeps=(
        Sweep(
            "max_norm",
            (0.1, 1.0, 10.0, 100.0),
            "How does the clipping threshold move the exploding network's test accuracy after a fixed budget?",
            metric="clipped_test_acc_after_6_epochs",
        ),
    ),
)
def gradient_clipping(run: Run, cfg: Config) -> None:
    ec = ExplodingConfig(
        depth=cfg.depth,
        scale=cfg.scale,
        lr=cfg.lr,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        max_norm=cfg.max_norm,
    )
    clip_value = cfg.clip_value
    norm_label, value_label = f"clip norm {ec.max_norm}", f"clip value {clip_value}"
    split = digits(seed=run.seed).to(run.device)
    x, y = split.x_train, split.y_train

    # ours vs torch on this network's gradients
    diffs = []
    for kind in ("norm", "value"):
        grads = []
        for _ in range(2):
            model = exploding_mlp(ec, 64, 10, run.seed).to(run.device)
            cross_entropy(model(x[:256]), y[:256]).backward()
            grads.append(list(model.parameters()))
        ours, ref = grads
        if kind == "norm":
            n1, n2 = clip_grad_norm_(ours, ec.max_norm), torch.nn.utils.clip_grad_norm_(ref, ec.max_norm)
            diffs.append(abs(float(n1) - float(n2)) / float(n2))
            run.metric("gradient_norm_at_init", float(n1))
        else:
            clip_grad_value_(ours, clip_value)
            torch.nn.utils.clip_grad_value_(ref, clip_value)
        diffs.append(max(float((a.grad - b.grad).abs().max()) for a, b in zip(ours, ref)))
    run.check_le("clip_grad_norm_ and clip_grad_value_ equal torch's on these gradients", max(diffs), 1e-6, strict=True)

    results = {}
    for label, callbacks in (
        ("no clipping", []),
        (norm_label, [GradientClipping(max_norm=ec.max_norm)]),
        (value_label, [GradientClipping(clip_value=clip_value)]),
    ):
        model = exploding_mlp(ec, 64, 10, run.seed).to(run.device)
        h = fit(
            model,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=SGD(model.parameters(), lr=ec.lr),
            epochs=ec.epochs,
            batch_size=ec.batch_size,
            seed=run.seed,
            callbacks=callbacks,
        )
        results[label] = (
            h,
            callbacks[0].norms if callbacks and callbacks[0].max_norm else None,
            accuracy(model, split.x_test, split.y_test) if not h.diverged else None,
        )
    plain, (clipped, norms, acc) = results["no clipping"][0], results[norm_label]
    run.metric("no_clipping_stop", f"{plain.stop_reason} at step {plain.nonfinite_step}")
    run.metric("clipped_train_loss_per_epoch", clipped.train_loss)
    run.metric(
        "clipped_train_loss_first_last",
        [clipped.train_loss[0], clipped.train_loss[-1]],
        key=True,
    )
    run.metric("clipped_test_acc_after_6_epochs", acc)
    run.metric("clipped_grad_norm_before_clipping_first_last", [norms[0], norms[-1]])
    hv = results[value_label][0]
    run.metric(
        "clip_value_train_loss_first_last",
        [hv.train_loss[0], hv.train_loss[-1]] if not hv.diverged else f"non-finite at step {hv.nonfinite_step}",
    )
    finite = not clipped.diverged and all(map(math.isfinite, clipped.step_loss))
    falling = all(b < a for a, b in zip(clipped.train_loss, clipped.train_loss[1:]))
    run.check(
        "with norm clipping the loss stays finite and falls every epoch",
        finite and falling and len(clipped.train_loss) == ec.epochs,
        observed=f"{clipped.train_loss[0]:.4g} -> {clipped.train_loss[-1]:.4g} over {len(clipped.train_loss)} epochs",
        expected="finite, decreasing",
    )
    run.check(
        "without clipping the same run diverges",
        plain.diverged,
        observed=f"{plain.stop_reason} at step {plain.nonfinite_step}",
        expected="non-finite loss",
    )

    with run.figure(
        "loss",
        alt="training loss per step on a log scale: without clipping only the first step's "
        "loss is finite; with norm or value clipping it falls steadily from 1e4 toward 1e2; right, the "
        "gradient norm before clipping stays around 1e4, far above max_norm = 1",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        for i, (label, (h, _, _)) in enumerate(results.items()):
            ax1.semilogy(
                range(1, len(h.step_loss) + 1),
                h.step_loss,
                "o-" if len(h.step_loss) < 5 else "-",
                color=f"C{i}",
                label=label + (" (then non-finite)" if h.diverged else ""),
            )
        ax1.set_xlabel("step")
        ax1.set_ylabel("training loss")
        ax1.legend(fontsize=8)
        ax1.grid(alpha=0.3)
        ax2.semilogy(range(1, len(norms) + 1), norms, color="C1")
        ax2.axhline(ec.max_norm, color="k", ls=":", lw=0.8, label="max_norm")
        ax2.set_xlabel("step")
        ax2.set_ylabel("gradient norm before clipping")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
