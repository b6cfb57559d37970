"""Learning rate: a sweep shows too small under-trains, too large diverges, the best is in between.

Model: an MLP (64-64-10) on scikit-learn's digits (1347 training images), plain SGD, batch 64, the same
initial weights and batches for every learning rate, 4 epochs (88 steps). Eleven learning rates,
log-spaced from 1e-4 to 100. The final loss is the mean training loss over the last epoch (a
non-finite loss counts as infinite). Checks (the spec): the smallest rate under-trains (its loss is
still >= 90 % of the initial loss), the largest diverges (non-finite or above the initial loss), and
the best rate is interior. The LR range test (`dlterms.tuning.lr_range_test`: one run of 100 steps
with the rate growing exponentially from 1e-4 to 100) is run on the same model; its suggestion must
lie within a factor of 10 of the sweep's best rate, for a fraction of the sweep's cost.

Thresholds: docs/experiments.md#learning-rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.nn import MLP
from dlterms.optim import SGD
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import evaluate, fit
from dlterms.tuning import lr_range_test


@dataclass(frozen=True)
class Config:
    """Parameters of the learning-rate experiment; the defaults are the recorded run."""

    lr_min: float = 1e-4  # smallest learning rate of the sweep
    lr_max: float = 100.0  # largest learning rate of the sweep
    n_lrs: int = 11  # rates in the sweep, log-spaced
    epochs: int = 4  # training budget of every rate
    batch_size: int = 64  # mini-batch size
    hidden: int = 64  # hidden units of the 64-H-10 MLP
    range_test_steps: int = 100  # steps of the LR range test (from lr_min to lr_max)

    def __post_init__(self) -> None:
        if not 0 < self.lr_min < self.lr_max:
            raise ValueError(f"lr_min must be in (0, lr_max={self.lr_max!r}), got {self.lr_min!r}")
        if self.n_lrs < 3:
            raise ValueError(f"n_lrs must be >= 3 (the best must be able to be interior), got {self.n_lrs!r}")
        for name in ("epochs", "batch_size", "hidden", "range_test_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


@experiment(
    "learning-rate",
    config=Config,
    sweeps=(
        Sweep(
            "epochs",
            (1, 4, 16),
            "Does the best learning rate of a fixed budget move as the budget grows (a small rate crawls "
            "within a short budget)?",
            metric="best_lr",
        ),
    ),
)
def learning_rate(run: Run, cfg: Config) -> None:
    LRS = [float(v) for v in np.geomspace(cfg.lr_min, cfg.lr_max, cfg.n_lrs)]
    EPOCHS = cfg.epochs
    split = digits(seed=run.seed).to(run.device)
    x, y = split.x_train, split.y_train
    torch.manual_seed(run.seed)
    loss0 = evaluate(MLP([64, cfg.hidden, 10]).to(run.device), x, y, cross_entropy)[0]
    final, histories = [], []
    for i, lr in enumerate(LRS):
        torch.manual_seed(run.seed)
        model = MLP([64, cfg.hidden, 10]).to(run.device)
        h = fit(
            model,
            (x, y),
            loss_fn=cross_entropy,
            optimizer=SGD(model.parameters(), lr=lr),
            epochs=EPOCHS,
            batch_size=cfg.batch_size,
            seed=run.seed,
        )
        last = h.train_loss[-1] if (not h.diverged and len(h.train_loss) == EPOCHS) else math.inf
        final.append(last if math.isfinite(last) else math.inf)
        histories.append(h)
        run.progress((i + 1) / (len(LRS) + 2), f"lr {lr:.3g}")
    best = int(np.argmin(final))
    run.metric("initial_loss", loss0)
    run.metric(
        "final_loss_per_lr",
        {f"{lr:.3g}": (v if math.isfinite(v) else "non-finite") for lr, v in zip(LRS, final)},
    )
    run.metric("best_lr", LRS[best], key=True)
    run.metric("best_final_loss", final[best])
    run.check_ge(
        f"the smallest lr ({LRS[0]:g}) under-trains: loss still >= 90 % of the initial loss", final[0] / loss0, 0.9
    )
    top = histories[-1]
    run.check(
        f"the largest lr ({LRS[-1]:g}) diverges: loss non-finite or above the initial loss",
        top.diverged or final[-1] > loss0,
        observed=("non-finite" if top.diverged else f"{final[-1]:.4f} vs initial {loss0:.4f}"),
        expected="non-finite or > initial",
    )
    run.check(
        "the best lr is interior to the sweep",
        0 < best < len(LRS) - 1,
        observed=f"{LRS[best]:.3g} (index {best} of 0..{len(LRS) - 1})",
        expected="not an end point",
    )

    torch.manual_seed(run.seed)
    model = MLP([64, cfg.hidden, 10]).to(run.device)
    rt = lr_range_test(
        model,
        (x, y),
        loss_fn=cross_entropy,
        optimizer=SGD(model.parameters(), lr=0.1),
        start_lr=cfg.lr_min,
        end_lr=cfg.lr_max,
        num_iter=cfg.range_test_steps,
        batch_size=cfg.batch_size,
        seed=run.seed,
    )
    sug = rt.suggestion
    run.metric("range_test_suggestion", sug if sug else None)
    run.metric("range_test_steps", len(rt.lrs))
    run.check(
        "the LR range test's suggestion is within 10x of the sweep's best lr",
        sug is not None and LRS[best] / 10 <= sug <= LRS[best] * 10,
        observed=f"{sug:.3g} vs {LRS[best]:.3g}" if sug else "none",
        expected="within 10x",
    )

    with run.figure(
        "sweep",
        alt="left: final training loss against learning rate on log axes, U-shaped with the "
        "minimum near 0.3-1 and divergence above; right: the LR range test's smoothed loss against the "
        "growing learning rate, with its suggestion marked",
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        shown = [v if math.isfinite(v) else np.nan for v in final]
        ax1.plot(LRS, shown, "o-")
        ax1.axhline(loss0, color="grey", ls=":", label="initial loss")
        ax1.plot([LRS[best]], [final[best]], "r*", ms=12, label=f"best lr {LRS[best]:.3g}")
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        ax1.set_xlabel("learning rate")
        ax1.set_ylabel(f"training loss after {EPOCHS} epochs")
        ax1.legend(fontsize=8)
        ax1.grid(alpha=0.3)
        ax2.plot(rt.lrs, rt.smoothed)
        if sug:
            ax2.axvline(sug, color="r", ls="--", label=f"suggestion {sug:.3g}")
        ax2.set_xscale("log")
        ax2.set_xlabel("learning rate (growing each step)")
        ax2.set_ylabel("smoothed loss")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
