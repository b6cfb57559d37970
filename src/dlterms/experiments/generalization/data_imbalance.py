"""Data imbalance: at 95/5, a plain classifier's accuracy looks high while it misses most of the minority
class; class weights (and random oversampling) raise minority recall and balanced accuracy by >= 10 points.

MNIST-1D turned into "is it a 3?": every training and test signal of the other nine classes, plus only
as many 3s as make them 5 % of the set (190 of ~3800 in training, ~47 of ~940 in test, drawn with the
run's seed). An MLP (40-64-2, Adam, 20 epochs) trained four ways: plain cross-entropy; cross-entropy
with balanced class weights w_k = n / (K n_k); plain cross-entropy on a randomly oversampled training
set; and the focal loss (gamma = 2). Always predicting "not a 3" scores 0.95, so a 0.95+ accuracy says
nothing by itself; recall on the 3s and balanced accuracy (the mean of the two recalls) say more.
the spec: weighting must raise minority recall and balanced accuracy by >= 10 points each. Accuracy
itself typically falls a little: the methods trade majority-class errors for minority hits.

Thresholds: docs/experiments.md#data-imbalance.
"""

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import mnist1d
from dlterms.data.samplers import RandomOversampler
from dlterms.losses import cross_entropy
from dlterms.methods.imbalance import class_weights, focal_loss
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import fit, predict


@dataclass(frozen=True)
class Config:
    """Parameters of the data-imbalance experiment; the defaults are the recorded run."""

    minority: int = 3  # the MNIST-1D class that becomes the rare positive
    fraction: float = 0.05  # share of positives in the training and the test set
    hidden: int = 64  # hidden units of the MLP
    epochs: int = 20  # training epochs of each setup
    lr: float = 1e-3  # Adam step size
    gamma: float = 2.0  # focusing parameter of the focal loss

    def __post_init__(self) -> None:
        if not 0 <= self.minority <= 9:
            raise ValueError(f"minority must be an MNIST-1D class in 0..9, got {self.minority!r}")
        # each class has ~10 % of the signals: above ~0.09 there are not enough positives to draw
        if not 0.005 <= self.fraction <= 0.09:
            raise ValueError(f"fraction must be in [0.005, 0.09], got {self.fraction!r}")
        if self.hidden < 1 or self.epochs < 1:
            raise ValueError(f"hidden and epochs must be >= 1, got {self.hidden!r} and {self.epochs!r}")
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma!r}")


def _imbalanced(
    x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, cfg: Config
) -> tuple[torch.Tensor, torch.Tensor]:
    pos = np.nonzero((y == cfg.minority).numpy())[0]
    neg = np.nonzero((y != cfg.minority).numpy())[0]
    n_pos = int(round(len(neg) * cfg.fraction / (1 - cfg.fraction)))  # positives make `fraction` of the set
    idx = np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False), neg]))
    return x[idx], (y[idx] == cfg.minority).long()


def _scores(model, x, y) -> dict[str, float]:
    pred = predict(model, x).argmax(1).cpu()
    y = y.cpu()
    recall = [float((pred[y == c] == c).float().mean()) for c in (0, 1)]
    return {
        "accuracy": float((pred == y).float().mean()),
        "minority_recall": recall[1],
        "majority_recall": recall[0],
        "balanced_accuracy": (recall[0] + recall[1]) / 2,
    }


@experiment(
    "data-imbalance",
    config=Config,
    sweeps=(
        Sweep(
            "fraction",
            (0.01, 0.02, 0.05, 0.09),
            "How much of the minority class does plain training miss as the positives get rarer?",
            metric="minority_recall_plain",
        ),
    ),
)
def data_imbalance(run: Run, cfg: Config) -> None:
    s = mnist1d()
    rng = run.rng(0)
    x_tr, y_tr = _imbalanced(s.x_train, s.y_train, rng, cfg)
    x_te, y_te = _imbalanced(s.x_test, s.y_test, rng, cfg)
    run.metric("train_counts", torch.bincount(y_tr).tolist())
    run.metric("test_counts", torch.bincount(y_te).tolist())
    w = class_weights(y_tr).to(run.device)
    run.metric("class_weights", w.tolist())
    over = RandomOversampler(y_tr, seed=run.seed).indices()
    setups = {
        "plain": (x_tr, y_tr, cross_entropy),
        "class weights": (x_tr, y_tr, lambda out, t: cross_entropy(out, t, weight=w)),
        "oversampling": (x_tr[over], y_tr[over], cross_entropy),
        f"focal (gamma {cfg.gamma:g})": (x_tr, y_tr, lambda out, t: focal_loss(out, t, gamma=cfg.gamma)),
    }
    res = {}
    for i, (name, (x, y, loss_fn)) in enumerate(setups.items()):
        torch.manual_seed(run.seed)
        model = MLP([40, cfg.hidden, 2]).to(run.device)
        fit(
            model,
            (x.to(run.device), y.to(run.device)),
            loss_fn=loss_fn,
            optimizer=Adam(model.parameters(), lr=cfg.lr),
            epochs=cfg.epochs,
            batch_size=64,
            seed=run.seed,
        )
        res[name] = _scores(model, x_te.to(run.device), y_te)
        key = name.split(" ")[0]
        for m, v in res[name].items():
            run.metric(f"{m}_{key}", v, key=(name, m) == ("class weights", "balanced_accuracy"))
        run.progress((i + 1) / len(setups), name)

    p, wt, ov = res["plain"], res["class weights"], res["oversampling"]
    run.check_ge("the plain model's accuracy looks high (>= 0.95, the all-majority score)", p["accuracy"], 0.95)
    run.check_le("while its minority recall is low (<= 0.5)", p["minority_recall"], 0.5)
    for name, r in (("class weights", wt), ("oversampling", ov)):
        for m in ("minority_recall", "balanced_accuracy"):
            verb = "raises" if name == "oversampling" else "raise"
            run.check(
                f"{name} {verb} {m.replace('_', ' ')} by >= 10 points",
                r[m] >= p[m] + 0.10,
                observed=r[m],
                expected=f">= {p[m] + 0.10:.4f} (plain {p[m]:.4f} + 0.10)",
            )

    with run.figure(
        "recall",
        alt="accuracy, minority recall and balanced accuracy of four training setups at "
        "95/5 imbalance: the plain model's accuracy is high but its minority recall is low",
    ) as fig:
        ax = fig.subplots()
        names = list(res)
        metrics = ("accuracy", "minority_recall", "balanced_accuracy")
        for j, m in enumerate(metrics):
            ax.bar(
                np.arange(len(names)) + (j - 1) * 0.27,
                [res[n][m] for n in names],
                width=0.27,
                label=m.replace("_", " "),
            )
        ax.axhline(1 - cfg.fraction, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(
            f"MNIST-1D, '{cfg.minority}' vs rest, {100 * cfg.fraction:g} % positives "
            f"(dotted: always 'not {cfg.minority}')"
        )
