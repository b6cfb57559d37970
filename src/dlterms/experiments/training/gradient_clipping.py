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

import torch

from dlterms.data.datasets import digits
from dlterms.experiments.training._common import ExplodingConfig, exploding_mlp
from dlterms.losses import cross_entropy
from dlterms.optim import SGD, clip_grad_norm_, clip_grad_value_
from dlterms.run import Run, experiment
from dlterms.training import GradientClipping, accuracy, fit


@experiment("gradient-clipping")
def gradient_clipping(run: Run) -> None:
    cfg = ExplodingConfig()
    split = digits(seed=run.seed).to(run.device)
    x, y = split.x_train, split.y_train

    # ours vs torch on this network's gradients
    diffs = []
    for kind in ("norm", "value"):
        grads = []
        for _ in range(2):
            model = exploding_mlp(cfg, 64, 10, run.seed).to(run.device)
            cross_entropy(model(x[:256]), y[:256]).backward()
            grads.append(list(model.parameters()))
        ours, ref = grads
        if kind == "norm":
            n1, n2 = clip_grad_norm_(ours, cfg.max_norm), torch.nn.utils.clip_grad_norm_(ref, cfg.max_norm)
            diffs.append(abs(float(n1) - float(n2)) / float(n2))
            run.metric("gradient_norm_at_init", float(n1))
        else:
            clip_grad_value_(ours, 0.01)
            torch.nn.utils.clip_grad_value_(ref, 0.01)
        diffs.append(max(float((a.grad - b.grad).abs().max()) for a, b in zip(ours, ref)))
    run.check(
        "clip_grad_norm_ and clip_grad_value_ equal torch's on these gradients",
        max(diffs) < 1e-6,
        observed=f"{max(diffs):.2e}",
        expected="< 1e-6",
    )

    results = {}
    for label, callbacks in (
        ("no clipping", []),
        ("clip norm 1.0", [GradientClipping(max_norm=cfg.max_norm)]),
        ("clip value 0.01", [GradientClipping(clip_value=0.01)]),
    ):
        model = exploding_mlp(cfg, 64, 10, run.seed).to(run.device)
        h = fit(
            model,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=SGD(model.parameters(), lr=cfg.lr),
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            seed=run.seed,
            callbacks=callbacks,
        )
        results[label] = (
            h,
            callbacks[0].norms if callbacks and callbacks[0].max_norm else None,
            accuracy(model, split.x_test, split.y_test) if not h.diverged else None,
        )
    plain, (clipped, norms, acc) = results["no clipping"][0], results["clip norm 1.0"]
    run.metric("no_clipping_stop", f"{plain.stop_reason} at step {plain.nonfinite_step}")
    run.metric("clipped_train_loss_per_epoch", [float(f"{v:.4g}") for v in clipped.train_loss])
    run.metric(
        "clipped_train_loss_first_last",
        [float(f"{clipped.train_loss[0]:.4g}"), float(f"{clipped.train_loss[-1]:.4g}")],
        key=True,
    )
    run.metric("clipped_test_acc_after_6_epochs", acc)
    run.metric("clipped_grad_norm_before_clipping_first_last", [float(f"{norms[0]:.3g}"), float(f"{norms[-1]:.3g}")])
    hv = results["clip value 0.01"][0]
    run.metric(
        "clip_value_train_loss_first_last",
        [float(f"{hv.train_loss[0]:.4g}"), float(f"{hv.train_loss[-1]:.4g}")]
        if not hv.diverged
        else f"non-finite at step {hv.nonfinite_step}",
    )
    finite = not clipped.diverged and all(map(math.isfinite, clipped.step_loss))
    falling = all(b < a for a, b in zip(clipped.train_loss, clipped.train_loss[1:]))
    run.check(
        "with norm clipping the loss stays finite and falls every epoch",
        finite and falling and len(clipped.train_loss) == cfg.epochs,
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
        ax2.axhline(cfg.max_norm, color="k", ls=":", lw=0.8, label="max_norm")
        ax2.set_xlabel("step")
        ax2.set_ylabel("gradient norm before clipping")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
