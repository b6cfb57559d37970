"""Out-of-distribution detection: a classifier of digits 0-4 meets digits 5-9.

An MLP (64-128-128-5) is trained on the digits 0-4 of scikit-learn's digits training split. Each
score is computed on the held-out test images of 0-4 (in-distribution) and on every image of the
digits 5-9 (never seen, out-of-distribution), and its AUROC for telling the two apart is measured
with our `dlterms.metrics.roc_auc_score` (in-distribution = positive). Scores: maximum softmax
probability, energy (T = 1) and Mahalanobis distance on the penultimate features (fitted on the
training features of 0-4). Also reported: the false-positive rate at 95 % true-positive rate, and
how confident the classifier is on digits it has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.methods.ood import MahalanobisScorer, energy_score, max_softmax_score
from dlterms.metrics import roc_auc_score, roc_curve
from dlterms.nn import MLP
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the out-of-distribution-detection experiment; the defaults are the recorded run."""

    sizes: tuple[int, ...] = (64, 128, 128, 5)  # MLP layer sizes
    epochs: int = 30  # training epochs
    lr: float = 1e-3  # Adam step size

    def __post_init__(self) -> None:
        if len(self.sizes) < 3 or self.sizes[0] != 64 or self.sizes[-1] != 5:
            raise ValueError(
                f"sizes must start at 64, end at 5 (digits 0-4) and have a hidden layer, got {self.sizes!r}"
            )
        if self.epochs < 1 or not self.lr > 0:
            raise ValueError(f"epochs must be >= 1 and lr > 0, got {self.epochs!r} and {self.lr!r}")


def _fpr_at_95_tpr(y, s) -> float:
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return float(fpr[np.searchsorted(tpr, 0.95)])


@experiment("out-of-distribution-detection", config=Config)
def out_of_distribution_detection(run: Run, cfg: Config) -> None:
    d = digits(test_size=0.3, seed=run.seed)
    tr, te = d.y_train < 5, d.y_test < 5
    x_in, y_in = d.x_train[tr].to(run.device), d.y_train[tr].to(run.device)
    x_test_in, y_test_in = d.x_test[te].to(run.device), d.y_test[te].to(run.device)
    x_out = torch.cat([d.x_train[~tr], d.x_test[~te]]).to(run.device)
    torch.manual_seed(run.seed)
    model = MLP(list(cfg.sizes)).to(run.device)
    fit(
        model,
        (x_in, y_in),
        loss_fn=cross_entropy,
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=64,
        seed=run.seed,
    )
    acc = accuracy(model, x_test_in, y_test_in)
    body = torch.nn.Sequential(*list(model)[:-1]).eval()  # penultimate features h(x)
    model.eval()
    with torch.no_grad():
        logits_in, logits_out = model(x_test_in), model(x_out)
        maha = MahalanobisScorer().fit(body(x_in), y_in)
        h_in, h_out = body(x_test_in), body(x_out)
    scores = {
        "max_softmax": (max_softmax_score(logits_in), max_softmax_score(logits_out)),
        "energy": (energy_score(logits_in), energy_score(logits_out)),
        "mahalanobis": (maha.score(h_in), maha.score(h_out)),
    }
    y = np.r_[np.ones(len(x_test_in)), np.zeros(len(x_out))]
    aurocs = {}
    for name, (s_in, s_out) in scores.items():
        s = torch.cat([s_in, s_out]).cpu().numpy()
        aurocs[name] = roc_auc_score(y, s)
        run.metric(f"auroc_{name}", aurocs[name], key=name == "energy")
        run.metric(f"fpr_at_95tpr_{name}", _fpr_at_95_tpr(y, s))
    msp_out = scores["max_softmax"][1]
    frac = float((msp_out > 0.9).float().mean())
    run.metric("in_distribution_test_acc", acc)
    run.metric("ood_mean_max_softmax", float(msp_out.mean()))
    run.metric("ood_fraction_confidence_above_0.9", frac)
    run.check_ge("the classifier of digits 0-4 is accurate on held-out 0-4", acc, 0.95)
    for name in scores:
        run.check_ge(f"{name} tells unseen digits 5-9 from held-out 0-4 well", aurocs[name], 0.85)
    run.check_ge("softmax confidence is a weak signal: many unseen digits get > 0.9 confidence", frac, 0.2)

    with run.figure(
        "scores",
        alt="histograms of each OOD score for held-out digits 0-4 and unseen digits 5-9, with ROC curves",
        figsize=(11, 3.6),
    ) as fig:
        axes = fig.subplots(1, 4)
        for ax, (name, (s_in, s_out)) in zip(axes, scores.items()):
            lo = float(min(s_in.min(), s_out.min()))
            hi = float(max(s_in.max(), s_out.max()))
            bins = np.linspace(lo, hi, 30)
            ax.hist(s_in.cpu().numpy(), bins=bins, alpha=0.6, density=True, label="0-4 (in)")
            ax.hist(s_out.cpu().numpy(), bins=bins, alpha=0.6, density=True, label="5-9 (out)")
            ax.set_title(f"{name}\nAUROC {aurocs[name]:.3f}")
            s = torch.cat([s_in, s_out]).cpu().numpy()
            fpr, tpr, _ = roc_curve(y, s)
            axes[3].plot(fpr, tpr, label=name)
        axes[0].legend()
        axes[3].plot([0, 1], [0, 1], c="gray", ls="--")
        axes[3].set_xlabel("false-positive rate")
        axes[3].set_ylabel("true-positive rate")
        axes[3].legend()
