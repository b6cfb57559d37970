"""Overfitting: a 300 k-parameter MLP memorises 200 digits with 30 % wrong labels.

The shared setup (`_common.py`): training accuracy against the noisy labels must reach >= 0.99 while
test accuracy on clean digits stays >= 20 points lower (the spec), and the train-test gap must grow with
training: it is compared at 10 % of the epochs (when the network has learnt the clean signal but not
yet the noise) and at the end.

Thresholds: docs/experiments.md#overfitting.
"""

from dlterms.experiments.generalization._common import OverfitConfig, plot_curves, train_overfit
from dlterms.run import Run, experiment


@experiment("overfitting")
def overfitting(run: Run) -> None:
    cfg = OverfitConfig()
    r = train_overfit(cfg, run.seed, run.device)
    run.progress(0.9, "trained")
    early = cfg.epochs // 10
    i_early = r.epochs.index(early)
    train, test = r.train_acc[-1], r.test_acc[-1]
    gap, gap_early = r.gap[-1], r.gap[i_early]
    run.metric("train_acc", round(train, 4))
    run.metric("test_acc", round(test, 4))
    run.metric("best_test_acc", round(max(r.test_acc), 4))
    run.metric("best_test_epoch", r.epochs[r.test_acc.index(max(r.test_acc))])
    run.metric(f"gap_epoch_{early}", round(gap_early, 4))
    run.metric("train_test_gap", round(gap, 4), key=True)
    run.check("the MLP fits its noisy training labels", train >= 0.99, observed=round(train, 4), expected=">= 0.99")
    run.check(
        "test accuracy is at least 20 points lower than training accuracy",
        gap >= 0.20,
        observed=round(gap, 4),
        expected=">= 0.20",
    )
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
        plot_curves(ax, {"MLP 512-512": r})
        ax.set_title("200 digits, 30 % label noise")
