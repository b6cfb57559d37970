"""Transfer learning: features learned on one task help a related task that has very few labels.

Source task: MNIST-1D classes 0-4 (about 2000 labelled signals). Target task: classes 5-9 with only
3 labels per class (15 signals). The same CNN is trained on the target labels (a) from scratch and
(b) as a new linear head on the frozen backbone pretrained on the source task. Few-shot accuracy
depends on which 15 signals are drawn, so both are averaged over 5 draws (same draws for both).
TERMS.md: transfer must beat scratch by >= 10 points. (On 8x8 digits, 0-4 -> 5-9, the gain was 0-5
points: a scratch CNN already learns those digits from a few labels, so we use MNIST-1D.)
"""

from __future__ import annotations

import numpy as np

from dlterms.experiments.vision._common import (
    N_DRAWS,
    few_shot_comparison,
    mnist1d_source_target,
    pretrained_source_cnn,
)
from dlterms.run import Run, experiment
from dlterms.training import accuracy

N_PER_CLASS = 3


@experiment("transfer-learning")
def transfer_learning(run: Run) -> None:
    source, target = mnist1d_source_target(run)
    pre = pretrained_source_cnn(run, source)
    src_acc = accuracy(pre, source.x_test, source.y_test)
    run.progress(0.4, "source CNN pretrained")
    acc = few_shot_comparison(run, pre, target, N_PER_CLASS, ("frozen", "scratch"))
    transfer, scratch = float(np.mean(acc["frozen"])), float(np.mean(acc["scratch"]))
    gain = transfer - scratch
    wins = sum(a > b for a, b in zip(acc["frozen"], acc["scratch"]))

    run.metric("source_test_acc", round(src_acc, 4))
    run.metric("target_labels", 5 * N_PER_CLASS)
    run.metric("target_test_acc_transfer_mean", round(transfer, 4))
    run.metric("target_test_acc_scratch_mean", round(scratch, 4))
    run.metric("target_test_acc_transfer_per_draw", [round(a, 4) for a in acc["frozen"]])
    run.metric("target_test_acc_scratch_per_draw", [round(a, 4) for a in acc["scratch"]])
    run.metric("transfer_gain_points", round(100 * gain, 1), key=True)
    run.check("the source task is learned (>= 95 % on source test)", src_acc >= 0.95, observed=round(src_acc, 4),
              expected=">= 0.95")
    run.check(f"with {5 * N_PER_CLASS} target labels, transferred features beat training from scratch by >= 10 "
              f"points (mean of {N_DRAWS} draws)", gain >= 0.10, observed=f"{100 * gain:.1f} points",
              expected=">= 10 points")
    run.check("transfer wins on every draw", wins == N_DRAWS, observed=f"{wins}/{N_DRAWS}",
              expected=f"{N_DRAWS}/{N_DRAWS}")

    with run.figure("transfer", alt="target test accuracy per draw of 15 labels: frozen pretrained backbone "
                    "with a new head against the same CNN trained from scratch") as fig:
        ax = fig.subplots()
        draws = np.arange(N_DRAWS)
        ax.bar(draws - 0.2, acc["frozen"], width=0.4, label=f"transfer (mean {transfer:.3f})")
        ax.bar(draws + 0.2, acc["scratch"], width=0.4, label=f"scratch (mean {scratch:.3f})")
        ax.axhline(0.2, ls=":", c="grey")
        ax.set(xlabel="draw of the 15 labelled target signals", ylabel="target test accuracy", ylim=(0, 1),
               xticks=draws, title="MNIST-1D: pretrained on classes 0-4, target classes 5-9")
        ax.legend()
