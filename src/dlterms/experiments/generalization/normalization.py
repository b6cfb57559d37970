r"""Normalization: standardising per channel gives mean 0 and std 1 per channel; layer norm does it per
example; and a classifier trained on raw, wildly scaled inputs needs >= 5x more steps to a target loss.

(1) Per channel: 16x16 RGB patches cut from scikit-image's astronaut, coffee and rocket photographs
(train) and chelsea (held out). `ChannelStandardScaler` fitted on the training patches must give every
channel |mean| < 1e-6 and |std - 1| < 1e-6 on them; on the held-out photograph the same statistics give
values near, not exactly at, 0 and 1 (reported). (2) Per example: `dlterms.nn.LayerNorm` on the raw
patches (those with any spread: std > 1 grey level) gives each patch mean 0 and std 1 and equals
`torch.nn.LayerNorm` to 1e-5 (in float64). (3) Steps: logistic
regression on scikit-learn's breast-cancer data (30 features whose scales run from 1e-3 to 1e3),
full-batch SGD, each input variant with its best learning rate from the same grid, counting steps
until the training cross-entropy falls to 0.08 (cap 500). the spec asks for >= 5x more steps raw.

Thresholds: docs/experiments.md#normalization.
"""

import numpy as np
import torch

from dlterms.data.scalers import ChannelStandardScaler, StandardScaler
from dlterms.losses import cross_entropy
from dlterms.nn import LayerNorm, Linear
from dlterms.optim import SGD
from dlterms.run import Run, experiment
from dlterms.training import StopAtLoss, fit

PATCH = 16
TARGET_LOSS = 0.08
MAX_STEPS = 500
LRS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _patches(img: np.ndarray) -> torch.Tensor:
    """Non-overlapping PATCH x PATCH patches of an (H, W, 3) uint8 image as (N, 3, PATCH, PATCH) in [0, 255]."""
    h, w = (img.shape[0] // PATCH) * PATCH, (img.shape[1] // PATCH) * PATCH
    x = torch.as_tensor(img[:h, :w], dtype=torch.float32).permute(2, 0, 1)  # (3, H, W)
    x = x.reshape(3, h // PATCH, PATCH, w // PATCH, PATCH).permute(1, 3, 0, 2, 4)  # (h/P, w/P, 3, P, P)
    return x.reshape(-1, 3, PATCH, PATCH)  # (N, 3, P, P)


def _steps_to_target(
    x: torch.Tensor, y: torch.Tensor, lr: float, seed: int, device: str
) -> tuple[int | None, list[float]]:
    torch.manual_seed(seed)
    model = Linear(x.shape[1], 2).to(device)
    stop = StopAtLoss(TARGET_LOSS)
    h = fit(
        model,
        (x.to(device), y.to(device)),
        loss_fn=cross_entropy,
        optimizer=SGD(model.parameters(), lr=lr),
        epochs=MAX_STEPS,
        batch_size=None,
        seed=seed,
        callbacks=[stop],
    )
    return stop.reached, h.step_loss


@experiment("normalization")
def normalization(run: Run) -> None:
    import skimage.data
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    # (1) per-channel standardisation of image patches
    train = torch.cat([_patches(getattr(skimage.data, n)()) for n in ("astronaut", "coffee", "rocket")])
    held = _patches(skimage.data.chelsea())
    scaler = ChannelStandardScaler().fit(train)
    z, zh = scaler.transform(train), scaler.transform(held)
    dims = (0, 2, 3)
    mean, std = z.double().mean(dims), z.double().std(dims, unbiased=False)
    run.metric("raw_channel_mean", [round(v, 2) for v in train.mean(dims).tolist()])
    run.metric("raw_channel_std", [round(v, 2) for v in train.std(dims).tolist()])
    run.metric("train_channel_mean_after", [float(f"{v:.2e}") for v in mean.tolist()])
    run.metric("train_channel_std_after", [round(v, 7) for v in std.tolist()])
    run.metric("heldout_channel_mean_after", [round(v, 3) for v in zh.mean(dims).tolist()])
    run.metric("heldout_channel_std_after", [round(v, 3) for v in zh.std(dims).tolist()])
    err_mean, err_std = float(mean.abs().max()), float((std - 1).abs().max())
    run.check(
        "after per-channel standardisation every channel has mean ~0",
        err_mean < 1e-6,
        observed=float(f"{err_mean:.2e}"),
        expected="|mean| < 1e-6",
    )
    run.check(
        "after per-channel standardisation every channel has std ~1",
        err_std < 1e-6,
        observed=float(f"{err_std:.2e}"),
        expected="|std - 1| < 1e-6",
    )

    # (2) layer normalisation: per example, matched to torch
    flat = train.reshape(len(train), -1)  # (N, 768)
    flat = flat[flat.std(1) > 1.0]  # flat (saturated) patches have no spread to normalise
    ln, ref = LayerNorm(flat.shape[1]), torch.nn.LayerNorm(flat.shape[1])
    with torch.no_grad():
        out = ln(flat)
        # compared in float64, where summation order does not show at 1e-5
        ln_err = float((ln.double()(flat.double()) - ref.double()(flat.double())).abs().max())
    per_ex = float(max(out.mean(1).abs().max(), (out.std(1, unbiased=False) - 1).abs().max()))
    run.metric("layernorm_max_abs_diff_vs_torch", ln_err)
    run.check(
        "LayerNorm gives every example mean 0 and std 1",
        per_ex < 1e-4,
        observed=float(f"{per_ex:.2e}"),
        expected="< 1e-4",
    )
    run.check("our LayerNorm equals torch.nn.LayerNorm", ln_err < 1e-5, observed=ln_err, expected="< 1e-5 (float64)")
    run.progress(0.2, "statistics checked")

    # (3) steps to a target loss, raw against standardised inputs, each at its best learning rate
    d = load_breast_cancer()
    x_tr, _, y_tr, _ = train_test_split(d.data, d.target, test_size=0.3, random_state=run.seed, stratify=d.target)
    variants = {
        "raw": torch.tensor(x_tr, dtype=torch.float32),
        "standardised": torch.tensor(StandardScaler().fit(x_tr).transform(x_tr), dtype=torch.float32),
    }
    y = torch.tensor(y_tr)
    best: dict[str, tuple[int, float, list[float]]] = {}
    for i, (name, x) in enumerate(variants.items()):
        for lr in LRS:
            steps, curve = _steps_to_target(x, y, lr, run.seed, run.device)
            count = steps if steps is not None else MAX_STEPS + 1  # not reached: worse than the cap
            if name not in best or count < best[name][0]:
                best[name] = (count, lr, curve)
        run.progress(0.2 + 0.4 * (i + 1), f"{name} done")
        reached = best[name][0] <= MAX_STEPS
        run.metric(f"steps_to_loss_{TARGET_LOSS}_{name}", best[name][0] if reached else f"> {MAX_STEPS}")
        run.metric(f"best_lr_{name}", best[name][1])
    raw, std_steps = best["raw"][0], best["standardised"][0]
    ratio = raw / max(std_steps, 1)
    run.metric("step_ratio", round(ratio, 1), key=True)
    run.check(
        "raw inputs need >= 5x more steps to the target loss than standardised ones",
        std_steps <= MAX_STEPS and ratio >= 5,
        observed=f"{'>' if raw > MAX_STEPS else ''}{min(raw, MAX_STEPS)} vs {std_steps}",
        expected=">= 5x",
    )

    with run.figure(
        "normalization",
        alt="left: per-channel value histograms of image patches before and "
        "after standardisation; right: training loss of logistic regression on raw and "
        "standardised breast-cancer features, each at its best learning rate",
        figsize=(10, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        for c, colour in enumerate(("red", "green", "blue")):
            ax1.hist(
                z[:, c].reshape(-1).numpy(),
                bins=60,
                histtype="step",
                color=colour,
                density=True,
                label=f"{colour} after",
            )
        ax1.set_xlabel("standardised value (raw 0..255)")
        ax1.set_title("per-channel standardisation")
        ax1.legend(fontsize=8)
        for name, (_, lr, curve) in best.items():
            ax2.plot(range(1, len(curve) + 1), curve, label=f"{name} (best lr {lr:g})")
        ax2.axhline(TARGET_LOSS, color="grey", linestyle=":")
        ax2.set_xscale("log")
        ax2.set_xlabel("full-batch SGD step")
        ax2.set_ylabel("training cross-entropy")
        ax2.set_ylim(0, 1.5)
        ax2.legend(fontsize=8)
