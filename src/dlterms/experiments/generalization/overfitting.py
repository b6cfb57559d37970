"""Overfitting: a 300 k-parameter MLP memorises 200 digits with 30 % wrong labels.

The shared setup (`_common.py`): training accuracy against the noisy labels must reach >= 0.99 while
test accuracy on clean digits stays >= 20 points lower (the spec), and the train-test gap must grow with
training: it is compared at 10 % of the epochs (when the network has learnt the clean signal but not
yet the noise) and at the end.

Thresholds: docs/experiments.md#overfitting.
"""

from dataclasses import dataclass

from dlterms.experiments.generalization._common import OverfitConfig, plot_curves, train_overfit
from dlterms.params import Sweep
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the overfitting experiment; the defaults are the recorded run."""

    n_train: int = 200  # training digits; the remaining ones are the test set
    label_noise: float = 0.3  # fraction of training labels replaced by a different class
    hidden: tuple[int, ...] = (512, 512)  # MLP hidden widths
    epochs: int = 150  # training epochs: long enough for the noisy labels to be memorised
    lr: float = 1e-3  # Adam step size

    def __post_init__(self) -> None:
        if not 20 <= self.n_train <= 1700:
            raise ValueError(f"n_train must be in [20, 1700] (1797 digits in all), got {self.n_train!r}")
        if not 0.0 <= self.label_noise < 0.9:
            raise ValueError(f"label_noise must be in [0, 0.9), got {self.label_noise!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be one or more widths >= 1, got {self.hidden!r}")
        if self.epochs < 50 or self.epochs % 50:
            raise ValueError(f"epochs must be a multiple of 50 (gap measured at a tenth of them), got {self.epochs!r}")


@experiment(
    "overfitting",
    config=Config,
    sweeps=(
        Sweep(
            "n_train",
            (100, 200, 400, 800),
            "How does the train-test gap of the same large network shrink as the noisy training set grows?",
            metric="train_test_gap",
        ),
    ),
)
def overfitting(run: Run, cfg: Config) -> None:
    setup = OverfitConfig(
        n_train=cfg.n_train, label_noise=cfg.label_noise, hidden=cfg.hidden, epochs=cfg.epochs, lr=cfg.lr
    )
    r = train_overfit(setup, run.seed, run.device)
    run.progress(0.9, "trained")
    early = cfg.epochs // 10
    i_early = r.epochs.index(early)
    train, test = r.train_acc[-1], r.test_acc[-1]
    gap, gap_early = r.gap[-1], r.gap[i_early]
    run.metric("train_acc", train)
    run.metric("test_acc", test)
    run.metric("best_test_acc", max(r.test_acc))
    run.metric("best_test_epoch", r.epochs[r.test_acc.index(max(r.test_acc))])
    run.metric(f"gap_epoch_{early}", gap_early)
    run.metric("train_test_gap", gap, key=True)
    run.check_ge("the MLP fits its noisy training labels", train, 0.99)
    run.check_ge("test accuracy is at least 20 points lower than training accuracy", gap, 0.20)
    run.check(
        f"the train-test gap grows with training (epoch {early} -> {cfg.epochs})",
        gap >= gap_early + 0.10,
        observed=f"{gap_early:.3f} -> {gap:.3f}",
        expected="grows by >= 0.10",
    )
    with run.figure(
        "curves",
        alt="training accuracy on noisy labels rises to 1 while test accuracy stalls "
        "near 0.7; the gap widens with epochs",
    ) as fig:
        ax = fig.subplots()
        plot_curves(ax, {f"MLP {'-'.join(map(str, cfg.hidden))}": r})
        ax.set_title(f"{cfg.n_train} digits, {100 * cfg.label_noise:g} % label noise")
