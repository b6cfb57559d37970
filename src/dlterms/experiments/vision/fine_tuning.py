"""Fine-tuning: frozen features + new head vs full fine-tuning at a small learning rate vs scratch.

Same transfer task as `transfer-learning`: a CNN pretrained on MNIST-1D classes 0-4, target classes
5-9. For two label budgets (3 and 20 labels per class) we train (1) a new linear head on the frozen
backbone, (2) the whole pretrained network, backbone at lr 1e-3 (a tenth of the head's 1e-2) with its
batch-norm statistics kept, and (3) the same network from scratch. All three are reported. Checks:
with 3 labels per class both uses of the pretrained network beat scratch; with 20 per class
fine-tuning beats frozen features (enough labels to adapt the backbone); and the advantage of
pretraining over scratch shrinks as labels become plentiful.

Each result is a mean over random draws of the labelled set, paired (the same draw and initialisation
seed for the three arms): 48 draws at 3 labels per class, where one draw's gain over scratch has a
standard deviation of about 5 points and the mean gains are 5-10 points, and 5 draws at 20 per class.
All draws of one arm are trained at once, side by side (`few_shot_models` in vision/_common.py, tested
equal to training them one after another), so 48 draws cost about what 12 did one at a time.
With 12 draws the mean gain at seed 1 was 6.1 points; with 5, seed 4's fine-tuning gain was 4.1.
The source CNN is pretrained for 25 epochs (`transfer-learning` uses 10): at 10, seed 4's mean gain
over 12 draws was 5.8 points, at 25 it was 7.2. More target steps did not help (150 instead of 50: 4.2
points at seed 4 over 5 draws).

What is left of the spread across seeds comes from the pretrained network more than from the draws: at
seed 9, four source CNNs pretrained from different seeds gave mean frozen-feature gains of 5.4, 7.7,
8.7 and 5.6 points on the same 48 draws. The weakest seeds measured (1 and 9) stay at about 6 points
with 128 draws (standard error 0.45), so the >= 5 point check holds there by about one point.
Measured, seeds 0-9, 11, 23: with 3 labels per class frozen features beat scratch by 5.4-9.8 points and
fine-tuning by 5.6-9.4; with 20 per class fine-tuning beat frozen features by 3.0-8.1 points and the best
pretrained gain was -3.4-5.7 points (5.6-9.8 at 3 per class).

Thresholds: docs/experiments.md#fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlterms.experiments.vision._common import (
    few_shot_comparison,
    mnist1d_source_target,
    pretrained_source_cnn,
)
from dlterms.run import Run, experiment

MODES = ("frozen", "fine-tune", "scratch")


@dataclass(frozen=True)
class Config:
    """Parameters of the fine-tuning experiment; the defaults are the recorded run."""

    few: int = 3  # labels per target class of the small budget
    many: int = 20  # labels per target class of the large budget
    few_draws: int = 48  # random draws of the labelled set at the small budget (results averaged)
    many_draws: int = 5  # random draws at the large budget
    source_epochs: int = 25  # pretraining epochs on the source classes

    def __post_init__(self) -> None:
        if not 1 <= self.few < self.many:
            raise ValueError(f"few must be in [1, many={self.many}), got {self.few!r}")
        if self.many > 200:
            raise ValueError(f"many must be <= 200 labels per class, got {self.many!r}")
        for name in ("few_draws", "many_draws", "source_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")


@experiment("fine-tuning", config=Config)
def fine_tuning(run: Run, cfg: Config) -> None:
    BUDGETS = (cfg.few, cfg.many)  # labels per class
    DRAWS = {cfg.few: cfg.few_draws, cfg.many: cfg.many_draws}
    source, target = mnist1d_source_target(run)
    pre = pretrained_source_cnn(run, source, epochs=cfg.source_epochs)
    run.progress(0.3, "source CNN pretrained")
    res = {n: few_shot_comparison(run, pre, target, n, MODES, n_draws=DRAWS[n]) for n in BUDGETS}
    mean = {n: {m: float(np.mean(res[n][m])) for m in MODES} for n in BUDGETS}
    for n in BUDGETS:
        for m in MODES:
            run.metric(f"target_acc_{m}_{n}_per_class", mean[n][m], key=(n, m) == (cfg.few, "fine-tune"))
    few, many = BUDGETS
    gain = {n: max(mean[n]["frozen"], mean[n]["fine-tune"]) - mean[n]["scratch"] for n in BUDGETS}
    run.metric("best_pretrained_gain_points", {n: 100 * g for n, g in gain.items()})

    for m in ("frozen", "fine-tune"):
        run.check_ge(
            f"with {few} labels per class, {m} beats scratch by >= 5 points (mean of {DRAWS[few]} draws)",
            mean[few][m],
            mean[few]["scratch"] + 0.05,
        )
    run.check_ge(
        f"with {many} labels per class, fine-tuning the whole network beats frozen features",
        mean[many]["fine-tune"],
        mean[many]["frozen"],
        strict=True,
    )
    run.check(
        f"pretraining's advantage shrinks with more labels ({few} -> {many} per class)",
        gain[many] < gain[few],
        observed=f"{100 * gain[few]:.1f} -> {100 * gain[many]:.1f} points",
        expected="smaller at the larger budget",
    )

    with run.figure(
        "fine-tuning",
        alt="target test accuracy of frozen features, fine-tuning and scratch training with 3 and 20 labels per class",
    ) as fig:
        ax = fig.subplots()
        x = np.arange(len(BUDGETS))
        for j, m in enumerate(MODES):
            vals = [mean[n][m] for n in BUDGETS]
            err = [np.std(res[n][m]) for n in BUDGETS]
            ax.bar(x + (j - 1) * 0.27, vals, width=0.27, yerr=err, capsize=3, label=m)
        ax.set(
            xticks=x,
            xticklabels=[f"{n} labels/class" for n in BUDGETS],
            ylabel="target test accuracy",
            ylim=(0, 1),
            title=f"MNIST-1D 0-4 -> 5-9 (mean and sd of {DRAWS[few]} and {DRAWS[many]} draws)",
        )
        ax.legend()
