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

import numpy as np
import torch

from dlterms.data.datasets import mnist1d
from dlterms.data.samplers import RandomOversampler
from dlterms.losses import cross_entropy
from dlterms.methods.imbalance import class_weights, focal_loss
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import fit, predict

MINORITY = 3  # the MNIST-1D class that becomes the rare positive
FRACTION = 0.05
EPOCHS = 20


def _imbalanced(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    pos = np.nonzero((y == MINORITY).numpy())[0]
    neg = np.nonzero((y != MINORITY).numpy())[0]
    n_pos = int(round(len(neg) * FRACTION / (1 - FRACTION)))  # positives make FRACTION of the set
    idx = np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False), neg]))
    return x[idx], (y[idx] == MINORITY).long()


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


@experiment("data-imbalance")
def data_imbalance(run: Run) -> None:
    s = mnist1d()
    rng = run.rng(0)
    x_tr, y_tr = _imbalanced(s.x_train, s.y_train, rng)
    x_te, y_te = _imbalanced(s.x_test, s.y_test, rng)
    run.metric("train_counts", torch.bincount(y_tr).tolist())
    run.metric("test_counts", torch.bincount(y_te).tolist())
    w = class_weights(y_tr).to(run.device)
    run.metric("class_weights", [round(v, 3) for v in w.tolist()])
    over = RandomOversampler(y_tr, seed=run.seed).indices()
    setups = {
        "plain": (x_tr, y_tr, cross_entropy),
        "class weights": (x_tr, y_tr, lambda out, t: cross_entropy(out, t, weight=w)),
        "oversampling": (x_tr[over], y_tr[over], cross_entropy),
        "focal (gamma 2)": (x_tr, y_tr, lambda out, t: focal_loss(out, t, gamma=2.0)),
    }
    res = {}
    for i, (name, (x, y, loss_fn)) in enumerate(setups.items()):
        torch.manual_seed(run.seed)
        model = MLP([40, 64, 2]).to(run.device)
        fit(
            model,
            (x.to(run.device), y.to(run.device)),
            loss_fn=loss_fn,
            optimizer=Adam(model.parameters(), lr=1e-3),
            epochs=EPOCHS,
            batch_size=64,
            seed=run.seed,
        )
        res[name] = _scores(model, x_te.to(run.device), y_te)
        key = name.split(" ")[0]
        for m, v in res[name].items():
            run.metric(f"{m}_{key}", round(v, 4), key=(name, m) == ("class weights", "balanced_accuracy"))
        run.progress((i + 1) / len(setups), name)

    p, wt, ov = res["plain"], res["class weights"], res["oversampling"]
    run.check(
        "the plain model's accuracy looks high (>= 0.95, the all-majority score)",
        p["accuracy"] >= 0.95,
        observed=round(p["accuracy"], 4),
        expected=">= 0.95",
    )
    run.check(
        "while its minority recall is low (<= 0.5)",
        p["minority_recall"] <= 0.5,
        observed=round(p["minority_recall"], 4),
        expected="<= 0.5",
    )
    for name, r in (("class weights", wt), ("oversampling", ov)):
        for m in ("minority_recall", "balanced_accuracy"):
            verb = "raises" if name == "oversampling" else "raise"
            run.check(
                f"{name} {verb} {m.replace('_', ' ')} by >= 10 points",
                r[m] >= p[m] + 0.10,
                observed=round(r[m], 4),
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
        ax.axhline(0.95, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title("MNIST-1D, '3' vs rest, 5 % positives (dotted: always 'not 3')")
