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

from dataclasses import dataclass

import numpy as np
import torch

from dlterms.data.scalers import ChannelStandardScaler, StandardScaler
from dlterms.losses import cross_entropy
from dlterms.nn import LayerNorm, Linear
from dlterms.optim import SGD
from dlterms.run import Run, experiment
from dlterms.training import StopAtLoss, fit


@dataclass(frozen=True)
class Config:
    """Parameters of the normalization experiment; the defaults are the recorded run."""

    patch: int = 16  # side of the square image patches, in pixels
    target_loss: float = 0.08  # training cross-entropy the steps are counted to
    max_steps: int = 500  # full-batch SGD steps at most (a run not at the target is counted as more)
    lrs: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # step sizes tried for each input variant

    def __post_init__(self) -> None:
        if not 2 <= self.patch <= 128:
            raise ValueError(f"patch must be in [2, 128] pixels, got {self.patch!r}")
        if not self.target_loss > 0:
            raise ValueError(f"target_loss must be > 0, got {self.target_loss!r}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps!r}")
        if not self.lrs or min(self.lrs) <= 0:
            raise ValueError(f"lrs must be positive step sizes, got {self.lrs!r}")


def _patches(img: np.ndarray, patch: int) -> torch.Tensor:
    """Non-overlapping patch x patch squares of an (H, W, 3) uint8 image as (N, 3, patch, patch) in [0, 255]."""
    p = patch
    h, w = (img.shape[0] // p) * p, (img.shape[1] // p) * p
    x = torch.as_tensor(img[:h, :w], dtype=torch.float32).permute(2, 0, 1)  # (3, H, W)
    x = x.reshape(3, h // p, p, w // p, p).permute(1, 3, 0, 2, 4)  # (h/P, w/P, 3, P, P)
    return x.reshape(-1, 3, p, p)  # (N, 3, P, P)


def _steps_to_target(
    x: torch.Tensor, y: torch.Tensor, lr: float, seed: int, device: str, cfg: Config
) -> tuple[int | None, list[float]]:
    torch.manual_seed(seed)
    model = Linear(x.shape[1], 2).to(device)
    stop = StopAtLoss(cfg.target_loss)
    h = fit(
        model,
        (x.to(device), y.to(device)),
        loss_fn=cross_entropy,
        optimizer=SGD(model.parameters(), lr=lr),
        epochs=cfg.max_steps,
        batch_size=None,
        seed=seed,
        callbacks=[stop],
    )
    return stop.reached, h.step_loss


@experiment("normalization", config=Config)
def normalization(run: Run, cfg: Config) -> None:
    import skimage.data
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    # (1) per-channel standardisation of image patches
    train = torch.cat([_patches(getattr(skimage.data, n)(), cfg.patch) for n in ("astronaut", "coffee", "rocket")])
    held = _patches(skimage.data.chelsea(), cfg.patch)
    scaler = ChannelStandardScaler().fit(train)
    z, zh = scaler.transform(train), scaler.transform(held)
    dims = (0, 2, 3)
    mean, std = z.double().mean(dims), z.double().std(dims, unbiased=False)
    run.metric("raw_channel_mean", train.mean(dims).tolist())
    run.metric("raw_channel_std", train.std(dims).tolist())
    run.metric("train_channel_mean_after", mean.tolist())
    run.metric("train_channel_std_after", std.tolist())
    run.metric("heldout_channel_mean_after", zh.mean(dims).tolist())
    run.metric("heldout_channel_std_after", zh.std(dims).tolist())
    err_mean, err_std = float(mean.abs().max()), float((std - 1).abs().max())
    # observed: max |mean| and max |std - 1| over the channels
    run.check_le("after per-channel standardisation every channel has mean ~0", err_mean, 1e-6, strict=True)
    run.check_le("after per-channel standardisation every channel has std ~1", err_std, 1e-6, strict=True)

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
    run.check_le("LayerNorm gives every example mean 0 and std 1", per_ex, 1e-4, strict=True)
    run.check_le("our LayerNorm equals torch.nn.LayerNorm", ln_err, 1e-5, strict=True)  # in float64
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
        for lr in cfg.lrs:
            steps, curve = _steps_to_target(x, y, lr, run.seed, run.device, cfg)
            count = steps if steps is not None else cfg.max_steps + 1  # not reached: worse than the cap
            if name not in best or count < best[name][0]:
                best[name] = (count, lr, curve)
        run.progress(0.2 + 0.4 * (i + 1), f"{name} done")
        reached = best[name][0] <= cfg.max_steps
        run.metric(f"steps_to_loss_{cfg.target_loss}_{name}", best[name][0] if reached else f"> {cfg.max_steps}")
        run.metric(f"best_lr_{name}", best[name][1])
    raw, std_steps = best["raw"][0], best["standardised"][0]
    ratio = raw / max(std_steps, 1)
    run.metric("step_ratio", ratio, key=True)
    run.check(
        "raw inputs need >= 5x more steps to the target loss than standardised ones",
        std_steps <= cfg.max_steps and ratio >= 5,
        observed=f"{'>' if raw > cfg.max_steps else ''}{min(raw, cfg.max_steps)} vs {std_steps}",
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
        ax2.axhline(cfg.target_loss, color="grey", linestyle=":")
        ax2.set_xscale("log")
        ax2.set_xlabel("full-batch SGD step")
        ax2.set_ylabel("training cross-entropy")
        ax2.set_ylim(0, 1.5)
        ax2.legend(fontsize=8)
