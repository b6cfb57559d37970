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

import torch

from dlterms.data.images import photo
from dlterms.methods.style_transfer import content_loss, random_features, stylize
from dlterms.run import Run, experiment

SIZE, STEPS = 96, 150
STYLE_WEIGHT = 300.0  # beta / alpha: the balance between style and content


@experiment("neural-style-transfer")
def neural_style_transfer(run: Run) -> None:
    net = random_features(generator=run.generator(1)).to(run.device)
    content = photo("astronaut", size=SIZE)[None].to(run.device)  # (1, 3, 96, 96)
    style = photo("hubble_deep_field", size=SIZE)[None].to(run.device)
    res = stylize(net, content, style, steps=STEPS, lr=0.03, style_weight=STYLE_WEIGHT)
    with torch.no_grad():
        style_as_content = content_loss(net(style)[-1], net(content)[-1]).item()  # L_content(s, c)
    s0, s1 = res.style_loss[0], res.style_loss[-1]
    drop = 1 - s1 / s0
    c1 = res.content_loss[-1]
    change = (res.image - content).abs().mean().item()

    run.metric("style_loss_initial", s0)
    run.metric("style_loss_final", s1)
    run.metric("style_loss_reduction", round(drop, 4), key=True)
    run.metric("content_loss_final", c1)
    run.metric("content_loss_of_style_image", style_as_content)
    run.metric("mean_abs_pixel_change", round(change, 4))
    run.check("the style loss falls by >= 90 %", drop >= 0.9, observed=round(drop, 4), expected=">= 0.90")
    run.check(
        "the content loss stays bounded: <= half of the style photo's own content loss",
        c1 <= 0.5 * style_as_content,
        observed=round(c1, 6),
        expected=f"<= {0.5 * style_as_content:.6f}",
    )
    run.check(
        "the image actually changed (mean |pixel change| >= 0.02)",
        change >= 0.02,
        observed=round(change, 4),
        expected=">= 0.02",
    )

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
