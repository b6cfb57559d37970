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

import torch

from dlterms.data.datasets import digits, mnist1d
from dlterms.losses import cross_entropy
from dlterms.methods.calibration import confidences, expected_calibration_error, reliability_bins
from dlterms.nn import MLP, softmax
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import fit, predict

EPS = 0.1
HIDDEN = (256, 256)
EPOCHS = 30
N_BINS = 15


def _train(split, eps: float, seed: int, device: str):
    torch.manual_seed(seed)
    model = MLP([split.x_train.shape[1], *HIDDEN, 10]).to(device)
    fit(
        model,
        (split.x_train, split.y_train),
        loss_fn=lambda out, y: cross_entropy(out, y, label_smoothing=eps),
        optimizer=Adam(model.parameters(), lr=1e-3),
        epochs=EPOCHS,
        batch_size=100,
        seed=seed,
    )
    logits = predict(model, split.x_test).cpu()
    return logits, softmax(logits, dim=1)


@experiment("label-smoothing")
def label_smoothing(run: Run) -> None:
    sets = {"mnist1d": mnist1d(), "digits": digits(seed=run.seed)}
    res, bins = {}, {}
    for i, (name, split) in enumerate(sets.items()):
        split = split.to(run.device)
        y = split.y_test.cpu()
        for eps in (0.0, EPS):
            logits, probs = _train(split, eps, run.seed, run.device)
            tag = f"{name}_{'smoothed' if eps else 'hard'}"
            conf, hit = confidences(probs, y)
            res[tag] = {
                "acc": float(hit.float().mean()),
                "mean_max_prob": float(conf.mean()),
                "ece": expected_calibration_error(probs, y, N_BINS),
            }
            bins[tag] = reliability_bins(conf, hit, N_BINS)
            for k, v in res[tag].items():
                run.metric(f"{k}_{tag}", round(v, 4), key=tag == "mnist1d_smoothed" and k == "ece")
            if eps:  # our smoothed cross-entropy against torch's on these logits
                ours = float(cross_entropy(logits, y, label_smoothing=eps))
                ref = float(torch.nn.functional.cross_entropy(logits, y, label_smoothing=eps))
                run.metric(f"smoothed_ce_abs_diff_vs_torch_{name}", abs(ours - ref))
        run.progress((i + 1) / len(sets), name)

    h, s = res["mnist1d_hard"], res["mnist1d_smoothed"]
    run.check(
        "MNIST-1D: the hard-label MLP is over-confident (mean max-prob > accuracy + 0.05)",
        h["mean_max_prob"] > h["acc"] + 0.05,
        observed=round(h["mean_max_prob"], 4),
        expected=f"> {h['acc'] + 0.05:.4f}",
    )
    run.check(
        "MNIST-1D: smoothing lowers the mean max-probability",
        s["mean_max_prob"] < h["mean_max_prob"],
        observed=round(s["mean_max_prob"], 4),
        expected=f"< {h['mean_max_prob']:.4f}",
    )
    run.check(
        "MNIST-1D: smoothing at least halves the expected calibration error",
        s["ece"] <= h["ece"] / 2,
        observed=round(s["ece"], 4),
        expected=f"<= {h['ece'] / 2:.4f} (hard {h['ece']:.4f} / 2)",
    )
    run.check(
        "MNIST-1D: accuracy no more than 1 point lower",
        s["acc"] >= h["acc"] - 0.01,
        observed=round(s["acc"], 4),
        expected=f">= {h['acc'] - 0.01:.4f}",
    )
    dh, ds = res["digits_hard"], res["digits_smoothed"]
    run.check(
        "digits: the hard-label MLP is already calibrated (ECE < 0.05)",
        dh["ece"] < 0.05,
        observed=round(dh["ece"], 4),
        expected="< 0.05",
    )
    run.check(
        "digits: smoothing makes calibration worse (ECE at least doubles)",
        ds["ece"] >= 2 * dh["ece"],
        observed=round(ds["ece"], 4),
        expected=f">= {2 * dh['ece']:.4f}",
    )
    diffs = [run.metrics[f"smoothed_ce_abs_diff_vs_torch_{n}"] for n in sets]
    run.check(
        "our smoothed cross-entropy equals torch's label_smoothing",
        max(diffs) < 1e-5,
        observed=max(diffs),
        expected="< 1e-5",
    )

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
