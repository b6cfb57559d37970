r"""Label smoothing: it fixes an over-confident model's calibration (MNIST-1D) and spoils an already
calibrated one's (digits).

Each dataset gets the same MLP (two hidden layers of 256, Adam 1e-3, 30 epochs, batch 100) trained twice:
with hard labels and with cross-entropy against $(1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon/K$,
$\varepsilon = 0.1$ (`dlterms.losses.cross_entropy(label_smoothing=0.1)`, checked here against torch's).
On MNIST-1D the hard-label MLP overfits its 4000 signals and is over-confident (its mean max-probability
is well above its accuracy): smoothing must lower both the mean max-probability and the expected
calibration error (15 bins) on the test set, with accuracy no more than 1 point lower (the spec). On
scikit-learn's digits the hard-label MLP is already nearly calibrated (ECE ~0.02); the same smoothing
pulls its confidence below its accuracy and must make ECE *worse*: smoothing helps only where there is
over-confidence to remove.

Thresholds: docs/experiments.md#label-smoothing.
"""

from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits, mnist1d
from dlterms.losses import cross_entropy
from dlterms.methods.calibration import confidences, expected_calibration_error, reliability_bins
from dlterms.nn import MLP, softmax
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import fit, predict

N_BINS = 15  # confidence bins of the expected calibration error


@dataclass(frozen=True)
class Config:
    """Parameters of the label-smoothing experiment; the defaults are the recorded run."""

    eps: float = 0.1  # label-smoothing epsilon of the smoothed arm (the hard arm has 0)
    hidden: tuple[int, ...] = (256, 256)  # MLP hidden widths
    epochs: int = 30  # training epochs of each arm
    lr: float = 1e-3  # Adam step size
    batch_size: int = 100  # minibatch size

    def __post_init__(self) -> None:
        if not 0.0 < self.eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {self.eps!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be one or more widths >= 1, got {self.hidden!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs!r} and {self.batch_size!r}")


def _train(split, eps: float, seed: int, device: str, cfg: Config):
    torch.manual_seed(seed)
    model = MLP([split.x_train.shape[1], *cfg.hidden, 10]).to(device)
    fit(
        model,
        (split.x_train, split.y_train),
        loss_fn=lambda out, y: cross_entropy(out, y, label_smoothing=eps),
        optimizer=Adam(model.parameters(), lr=cfg.lr),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        seed=seed,
    )
    logits = predict(model, split.x_test).cpu()
    return logits, softmax(logits, dim=1)


@experiment(
    "label-smoothing",
    config=Config,
    sweeps=(
        Sweep(
            "eps",
            (0.03, 0.1, 0.3),
            "How does the calibration error of the over-confident MNIST-1D model move with epsilon?",
            metric="ece_mnist1d_smoothed",
        ),
    ),
)
def label_smoothing(run: Run, cfg: Config) -> None:
    sets = {"mnist1d": mnist1d(), "digits": digits(seed=run.seed)}
    res, bins = {}, {}
    for i, (name, split) in enumerate(sets.items()):
        split = split.to(run.device)
        y = split.y_test.cpu()
        for eps in (0.0, cfg.eps):
            logits, probs = _train(split, eps, run.seed, run.device, cfg)
            tag = f"{name}_{'smoothed' if eps else 'hard'}"
            conf, hit = confidences(probs, y)
            res[tag] = {
                "acc": float(hit.float().mean()),
                "mean_max_prob": float(conf.mean()),
                "ece": expected_calibration_error(probs, y, N_BINS),
            }
            bins[tag] = reliability_bins(conf, hit, N_BINS)
            for k, v in res[tag].items():
                run.metric(f"{k}_{tag}", v, key=tag == "mnist1d_smoothed" and k == "ece")
            if eps:  # our smoothed cross-entropy against torch's on these logits
                ours = float(cross_entropy(logits, y, label_smoothing=eps))
                ref = float(torch.nn.functional.cross_entropy(logits, y, label_smoothing=eps))
                run.metric(f"smoothed_ce_abs_diff_vs_torch_{name}", abs(ours - ref))
        run.progress((i + 1) / len(sets), name)

    h, s = res["mnist1d_hard"], res["mnist1d_smoothed"]
    run.check(
        "MNIST-1D: the hard-label MLP is over-confident (mean max-prob > accuracy + 0.05)",
        h["mean_max_prob"] > h["acc"] + 0.05,
        observed=h["mean_max_prob"],
        expected=f"> {h['acc'] + 0.05:.4f}",
    )
    run.check(
        "MNIST-1D: smoothing lowers the mean max-probability",
        s["mean_max_prob"] < h["mean_max_prob"],
        observed=s["mean_max_prob"],
        expected=f"< {h['mean_max_prob']:.4f}",
    )
    run.check(
        "MNIST-1D: smoothing at least halves the expected calibration error",
        s["ece"] <= h["ece"] / 2,
        observed=s["ece"],
        expected=f"<= {h['ece'] / 2:.4f} (hard {h['ece']:.4f} / 2)",
    )
    run.check(
        "MNIST-1D: accuracy no more than 1 point lower",
        s["acc"] >= h["acc"] - 0.01,
        observed=s["acc"],
        expected=f">= {h['acc'] - 0.01:.4f}",
    )
    dh, ds = res["digits_hard"], res["digits_smoothed"]
    run.check_le("digits: the hard-label MLP is already calibrated (ECE < 0.05)", dh["ece"], 0.05, strict=True)
    run.check(
        "digits: smoothing makes calibration worse (ECE at least doubles)",
        ds["ece"] >= 2 * dh["ece"],
        observed=ds["ece"],
        expected=f">= {2 * dh['ece']:.4f}",
    )
    diffs = [run.metrics[f"smoothed_ce_abs_diff_vs_torch_{n}"] for n in sets]
    run.check_le("our smoothed cross-entropy equals torch's label_smoothing", max(diffs), 1e-5, strict=True)

    with run.figure(
        "reliability",
        alt="reliability diagrams: on MNIST-1D the hard-label MLP's bars fall below "
        "the diagonal (over-confident) and smoothing brings them to it; on digits the hard-label "
        "bars sit on the diagonal and smoothing pushes them above it (under-confident)",
        figsize=(10, 4.2),
    ) as fig:
        axes = fig.subplots(1, 2)
        for ax, name in zip(axes, sets, strict=True):
            for j, kind in enumerate(("hard", "smoothed")):
                b = bins[f"{name}_{kind}"]
                keep = b.count > 0
                centres = ((b.edges[:-1] + b.edges[1:]) / 2)[keep]
                ax.bar(
                    centres + (j - 0.5) / N_BINS / 2,
                    b.accuracy[keep],
                    width=1 / N_BINS / 2,
                    label=f"{kind} (ECE {res[f'{name}_{kind}']['ece']:.3f})",
                )
            ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
            ax.set_xlabel("confidence (max probability)")
            ax.set_ylabel("accuracy in bin")
            ax.set_title(name)
            ax.legend(fontsize=8, loc="upper left")
