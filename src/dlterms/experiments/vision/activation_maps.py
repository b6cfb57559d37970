"""Activation maps: do Grad-CAM's hot regions matter to the classifier? An occlusion test.

On the trained digits CNN, Grad-CAM (at the second block's ReLU, 4x4, upsampled to 8x8) picks for
each test image the 4x4 window with the most class evidence. Erasing that window (setting it to 0,
the background) should lower the predicted class's logit more than erasing a random 4x4 window
(averaged over 5 random windows per image), over all 450 test images (the spec asks for >= 50).
We also report how often the prediction changes. Figures: the first layer's 16 activation maps
for one digit, and Grad-CAM and saliency maps for a row of test digits.

Thresholds: docs/experiments.md#activation-maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlterms.experiments.vision._common import DIGITS_EPOCHS, trained_digits_cnn
from dlterms.methods.saliency import ActivationRecorder, grad_cam, occlude, saliency_map
from dlterms.run import Run, experiment
from dlterms.training import accuracy, predict


@dataclass(frozen=True)
class Config:
    """Parameters of the activation-maps experiment; the defaults are the recorded run."""

    layer: str = "features.6"  # Grad-CAM layer: the ReLU after the second conv block, (B, 32, 4, 4)
    win: int = 4  # side of the occluded square window, in pixels of the 8x8 image
    n_random: int = 5  # random windows per image (the baseline the Grad-CAM window is compared with)
    epochs: int = DIGITS_EPOCHS  # training epochs of the digits CNN

    def __post_init__(self) -> None:
        if not self.layer.startswith("features."):
            raise ValueError(f"layer must name a module of the CNN's features (e.g. 'features.6'), got {self.layer!r}")
        if not 1 <= self.win <= 7:
            raise ValueError(f"win must be in [1, 7] (the image is 8x8), got {self.win!r}")
        if self.n_random < 1 or self.epochs < 1:
            raise ValueError(f"n_random and epochs must be >= 1, got {self.n_random!r}, {self.epochs!r}")


def _window_mask(top: torch.Tensor, left: torch.Tensor, size: int, hw: int) -> torch.Tensor:
    """(B, hw, hw) boolean masks of the size x size windows at (top, left)."""
    r = torch.arange(hw, device=top.device)
    rows = (r.view(1, -1) >= top.view(-1, 1)) & (r.view(1, -1) < top.view(-1, 1) + size)  # (B, hw)
    cols = (r.view(1, -1) >= left.view(-1, 1)) & (r.view(1, -1) < left.view(-1, 1) + size)
    return rows.unsqueeze(2) & cols.unsqueeze(1)


@experiment("activation-maps", config=Config)
def activation_maps(run: Run, cfg: Config) -> None:
    LAYER, WIN, N_RANDOM = cfg.layer, cfg.win, cfg.n_random
    model, d = trained_digits_cnn(run, epochs=cfg.epochs)
    x, y = d.x_test, d.y_test
    n, hw = len(x), x.shape[-1]
    acc = accuracy(model, x, y)
    run.progress(0.6, "CNN trained")

    logits = predict(model, x)
    pred = logits.argmax(1)
    base = logits.gather(1, pred.view(-1, 1))[:, 0]  # y_c of the predicted class

    cam = grad_cam(model, x, LAYER, target=pred)  # (B, 8, 8)
    # evidence in every 4x4 window (stride 1): (B, 5, 5); pick the largest
    evidence = F.avg_pool2d(cam.unsqueeze(1), WIN, stride=1)[:, 0]
    best = evidence.flatten(1).argmax(1)
    n_pos = hw - WIN + 1
    cam_mask = _window_mask(best // n_pos, best % n_pos, WIN, hw)

    def score_drop(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = predict(model, occlude(x, mask))
        return base - out.gather(1, pred.view(-1, 1))[:, 0], out.argmax(1) != pred

    drop_cam, flip_cam = score_drop(cam_mask)
    gen = run.generator(1)
    drops_rand, flips_rand = [], []
    for _ in range(N_RANDOM):
        top = torch.randint(0, n_pos, (n,), generator=gen).to(x.device)
        left = torch.randint(0, n_pos, (n,), generator=gen).to(x.device)
        dr, fr = score_drop(_window_mask(top, left, WIN, hw))
        drops_rand.append(dr)
        flips_rand.append(fr.float())
    drop_rand = torch.stack(drops_rand).mean(0)  # per image, averaged over the random windows
    flip_rand = torch.stack(flips_rand).mean(0)
    wins = (drop_cam > drop_rand).float().mean().item()

    run.metric("test_acc", acc)
    run.metric("n_images", n)
    run.metric("mean_logit_drop_gradcam_window", drop_cam.mean().item(), key=True)
    run.metric("mean_logit_drop_random_window", drop_rand.mean().item())
    run.metric("prediction_changed_gradcam", flip_cam.float().mean().item())
    run.metric("prediction_changed_random", flip_rand.mean().item())
    run.metric("fraction_images_gradcam_drop_larger", wins)
    run.check_ge(
        f"occluding the top Grad-CAM {WIN}x{WIN} window lowers the class score more than a random {WIN}x{WIN} window "
        f"(mean over {n} images)",
        drop_cam.mean().item(),
        drop_rand.mean().item(),
        strict=True,
    )
    run.check_ge("it does so on most images", wins, 0.5, strict=True)
    run.check_ge("enough images", n, 50)

    # ---- figures
    sal = saliency_map(model, x[:8], target=pred[:8])
    with ActivationRecorder(model, ["features.2"]) as rec:
        predict(model, x[:1])
    maps = rec.activations["features.2"][0].cpu()  # (16, 8, 8), first block after ReLU
    with run.figure(
        "activation-maps", alt="the 16 activation maps of the first conv layer for one test digit", figsize=(8, 4.4)
    ) as fig:
        axes = fig.subplots(3, 6)
        axes[0, 0].imshow(x[0, 0].cpu(), cmap="gray_r")
        axes[0, 0].set_title(f"input ({int(y[0])})", fontsize=8)
        for i, ax in enumerate(axes.flat[1:]):
            if i < maps.shape[0]:
                ax.imshow(maps[i], cmap="viridis")
                ax.set_title(f"ch {i}", fontsize=7)
        for ax in axes.flat:
            ax.axis("off")
    with run.figure(
        "grad-cam",
        alt="test digits with their Grad-CAM overlay, the occluded window and the saliency map",
        figsize=(10, 4),
    ) as fig:
        axes = fig.subplots(3, 8)
        for j in range(8):
            axes[0, j].imshow(x[j, 0].cpu(), cmap="gray_r")
            axes[0, j].set_title(f"pred {int(pred[j])}", fontsize=8)
            axes[1, j].imshow(x[j, 0].cpu(), cmap="gray_r")
            axes[1, j].imshow(cam[j].cpu(), cmap="jet", alpha=0.5)
            axes[1, j].contour(cam_mask[j].cpu().float(), levels=[0.5], colors="white", linewidths=1)
            axes[2, j].imshow(sal[j].cpu(), cmap="hot")
        for ax, label in zip(axes[:, 0], ("input", "Grad-CAM", "saliency")):
            ax.set_ylabel(label, fontsize=8)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
