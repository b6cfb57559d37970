"""Neural style transfer: repaint a bundled photo with another photo's texture statistics.

Content: scikit-image's astronaut; style: the Hubble deep field; both 96x96 colour. Features: a fixed
random-weight 3-block CNN (no pretrained VGG can be downloaded here; see `random_features`). The
image, initialised to the content photo, is optimised with Adam for 150 steps on
content loss (last block) + 300 x style loss (Gram matrices of all three blocks).
the spec: the style loss must fall by >= 90 % while the content loss stays bounded; we bound it by
half the content loss the style photo itself would have, i.e. the result stays much closer to the
astronaut's content than the style photo is. Figure: content, style and result, and both losses.

Thresholds: docs/experiments.md#neural-style-transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.images import photo
from dlterms.methods.style_transfer import content_loss, random_features, stylize
from dlterms.params import Sweep
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the neural-style-transfer experiment; the defaults are the recorded run."""

    style_weight: float = 300.0  # beta / alpha: the balance between style and content
    steps: int = 150  # optimisation steps on the image
    lr: float = 0.03  # Adam step size on the pixels
    size: int = 96  # side of the content and style photos, in pixels

    def __post_init__(self) -> None:
        if not self.style_weight > 0 or not self.lr > 0:
            raise ValueError(f"style_weight and lr must be > 0, got {self.style_weight!r}, {self.lr!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps!r}")
        if not 32 <= self.size <= 256:
            raise ValueError(f"size must be in [32, 256], got {self.size!r}")


@experiment(
    "neural-style-transfer",
    config=Config,
    sweeps=(
        Sweep(
            "style_weight",
            (30.0, 300.0, 3000.0),
            "How far does the result move from the content photo as the style weight grows?",
            metric="mean_abs_pixel_change",
        ),
    ),
)
def neural_style_transfer(run: Run, cfg: Config) -> None:
    SIZE, STEPS, STYLE_WEIGHT = cfg.size, cfg.steps, cfg.style_weight
    net = random_features(generator=run.generator(1)).to(run.device)
    content = photo("astronaut", size=SIZE)[None].to(run.device)  # (1, 3, 96, 96)
    style = photo("hubble_deep_field", size=SIZE)[None].to(run.device)
    res = stylize(net, content, style, steps=STEPS, lr=cfg.lr, style_weight=STYLE_WEIGHT)
    with torch.no_grad():
        style_as_content = content_loss(net(style)[-1], net(content)[-1]).item()  # L_content(s, c)
    s0, s1 = res.style_loss[0], res.style_loss[-1]
    drop = 1 - s1 / s0
    c1 = res.content_loss[-1]
    change = (res.image - content).abs().mean().item()

    run.metric("style_loss_initial", s0)
    run.metric("style_loss_final", s1)
    run.metric("style_loss_reduction", drop, key=True)
    run.metric("content_loss_final", c1)
    run.metric("content_loss_of_style_image", style_as_content)
    run.metric("mean_abs_pixel_change", change)
    run.check_ge("the style loss falls by >= 90 %", drop, 0.9)
    run.check_le(
        "the content loss stays bounded: <= half of the style photo's own content loss", c1, 0.5 * style_as_content
    )
    run.check_ge("the image actually changed (mean |pixel change| >= 0.02)", change, 0.02)

    with run.figure(
        "result",
        alt="content photo (astronaut), style photo (Hubble deep field), the stylised "
        "result, and the content and style losses per step",
        figsize=(12, 3.2),
    ) as fig:
        axes = fig.subplots(1, 4)
        for ax, img, title in zip(axes, (content, style, res.image), ("content", "style", "result")):
            ax.imshow(img[0].permute(1, 2, 0).cpu().clamp(0, 1))
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        ax = axes[3]
        ax.semilogy(res.style_loss, label="style loss")
        ax.semilogy([max(v, 1e-12) for v in res.content_loss], label="content loss")
        ax.set(xlabel="step", title="losses")
        ax.legend(fontsize=8)
