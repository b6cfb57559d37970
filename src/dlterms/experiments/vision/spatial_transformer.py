"""Spatial transformer networks: learning to undo random rotations and shifts of digits.

Data: every 8x8 digit is upsampled to 16x16 and placed on a 24x24 canvas, rotated by a random
angle in +-45 degrees and shifted by up to +-3 px (drawn once per image, train and test alike);
the warp itself uses our `affine_grid`/`grid_sample`. Models: a CNN; the same CNN behind a spatial
transformer (a small localisation net predicting an affine map, initialised to the identity); and
a wider CNN with at least as many parameters as the STN model, so that the STN's gain is not just
its extra parameters. the spec: the STN model must beat the plain CNN. Figure: test inputs and the
STN's un-warped versions of them.

Thresholds: docs/experiments.md#spatial-transformer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from dlterms.data.datasets import digits
from dlterms.losses import cross_entropy
from dlterms.models.cnn import ConvNet, count_parameters
from dlterms.nn import Conv2d, Linear, MaxPool2d, ReLU
from dlterms.nn.spatial_transformer import SpatialTransformer, affine_grid, grid_sample, rotation_theta
from dlterms.optim import Adam
from dlterms.optim.schedules import CosineAnnealingLR
from dlterms.run import Run, experiment
from dlterms.training import accuracy, fit, predict


@dataclass(frozen=True)
class Config:
    """Parameters of the spatial-transformer experiment; the defaults are the recorded run."""

    canvas: int = 24  # side of the warped images, in pixels (the localisation net is built for 24)
    digit: int = 16  # the 8x8 digit is drawn at this size, in pixels
    max_angle: float = 45.0  # largest random rotation, in degrees (either way)
    max_shift: int = 3  # largest random shift, in pixels (each axis, either way)
    epochs: int = 8  # training epochs of each model
    lr: float = 5e-3  # Adam step size, cosine-annealed

    def __post_init__(self) -> None:
        if self.canvas != 24:
            raise ValueError(f"canvas must be 24 (the localisation net's input size), got {self.canvas!r}")
        if not 4 <= self.digit <= 24:
            raise ValueError(f"digit must be in [4, 24] pixels, got {self.digit!r}")
        if not 0 <= self.max_angle <= 180 or not 0 <= self.max_shift <= 8:
            raise ValueError(
                f"max_angle must be in [0, 180] and max_shift in [0, 8], got {self.max_angle!r}, {self.max_shift!r}"
            )
        if self.epochs < 1 or not self.lr > 0:
            raise ValueError(f"epochs must be >= 1 and lr > 0, got {self.epochs!r}, {self.lr!r}")


def _warped_digits(x: torch.Tensor, cfg: Config, gen: torch.Generator) -> torch.Tensor:
    """Each (1, 8, 8) digit drawn at cfg.digit px on a cfg.canvas canvas, randomly rotated and shifted."""
    n = len(x)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(cfg.max_angle)
    shift_px = torch.randint(-cfg.max_shift, cfg.max_shift + 1, (n, 2), generator=gen).float()
    # canvas coordinate u (half-width canvas/2 px) reads digit coordinate scale * R u - shift
    scale = cfg.canvas / cfg.digit
    theta = rotation_theta(angle, scale, -shift_px / (cfg.digit / 2))
    grid = affine_grid(theta, (n, 1, cfg.canvas, cfg.canvas))
    return grid_sample(x, grid)  # (N, 1, canvas, canvas)


def _stn_model(cfg: Config, channels=(16, 32)) -> nn.Module:
    loc = nn.Sequential(
        MaxPool2d(2),
        Conv2d(1, 8, 5),
        MaxPool2d(2),
        ReLU(),
        Conv2d(8, 10, 3),
        ReLU(),
        nn.Flatten(),
        Linear(40, 32),
        ReLU(),
    )  # 24 -> 12 -> 8 -> 4 -> 2: 40 features
    return nn.Sequential(
        SpatialTransformer(loc, 32), ConvNet(1, 10, (cfg.canvas, cfg.canvas), channels=channels, batch_norm=True)
    )


@experiment("spatial-transformer", config=Config)
def spatial_transformer(run: Run, cfg: Config) -> None:
    d = digits(images=True)
    x_tr = _warped_digits(d.x_train, cfg, run.generator(1)).to(run.device)
    x_te = _warped_digits(d.x_test, cfg, run.generator(2)).to(run.device)
    y_tr, y_te = d.y_train.to(run.device), d.y_test.to(run.device)

    builders = {
        "CNN": lambda: ConvNet(1, 10, (cfg.canvas, cfg.canvas), channels=(16, 32), batch_norm=True),
        "STN + CNN": lambda: _stn_model(cfg),
        "wider CNN": lambda: ConvNet(1, 10, (cfg.canvas, cfg.canvas), channels=(20, 36), batch_norm=True),
    }
    models, acc, params = {}, {}, {}
    for i, (name, build) in enumerate(builders.items()):
        torch.manual_seed(run.seed)
        m = build().to(run.device)
        opt = Adam(m.parameters(), lr=cfg.lr)
        fit(
            m,
            (x_tr, y_tr),
            loss_fn=cross_entropy,
            optimizer=opt,
            epochs=cfg.epochs,
            batch_size=128,
            seed=run.seed,
            scheduler=CosineAnnealingLR(opt, T_max=cfg.epochs),
        )
        models[name], acc[name], params[name] = m, accuracy(m, x_te, y_te), count_parameters(m)
        run.metric(f"test_acc_{name.replace(' ', '_')}", acc[name], key=name == "STN + CNN")
        run.metric(f"params_{name.replace(' ', '_')}", params[name])
        run.progress((i + 1) / len(builders), f"{name} trained")

    run.check_ge("the STN model beats the same CNN without it", acc["STN + CNN"], acc["CNN"], strict=True)
    run.check_ge("the wider CNN has at least the STN model's parameters", params["wider CNN"], params["STN + CNN"])
    run.check_ge(
        "the STN model also beats a CNN with as many parameters", acc["STN + CNN"], acc["wider CNN"], strict=True
    )

    stn = models["STN + CNN"][0]
    stn.eval()
    with torch.no_grad():
        unwarped = stn(x_te[:8])
        pred = predict(models["STN + CNN"], x_te[:8]).argmax(1)
    with run.figure(
        "unwarped",
        alt="rotated and shifted test digits (top) and the spatial transformer's un-warped versions of them (bottom)",
        figsize=(10, 3),
    ) as fig:
        axes = fig.subplots(2, 8)
        for j in range(8):
            axes[0, j].imshow(x_te[j, 0].cpu(), cmap="gray_r")
            axes[0, j].set_title(f"label {int(y_te[j])}", fontsize=8)
            axes[1, j].imshow(unwarped[j, 0].cpu(), cmap="gray_r")
            axes[1, j].set_title(f"pred {int(pred[j])}", fontsize=8)
        axes[0, 0].set_ylabel("input", fontsize=8)
        axes[1, 0].set_ylabel("STN output", fontsize=8)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
