r"""Neural style transfer: optimise an image so its deep features match one image's content and
another's style (Gatys, Ecker & Bethge, 2016, "Image Style Transfer Using Convolutional Neural Networks").

With $F^l(x) \in \mathbb{R}^{C_l \times H_l W_l}$ the feature maps of layer $l$ of a fixed CNN:

Content loss (layer $l_c$): $\mathcal{L}_{content}(x, c) = \frac{1}{C H W}\|F^{l_c}(x) - F^{l_c}(c)\|_F^2$.

Style is summarised by the Gram matrix of channel correlations, which discards *where* features occur:

$$G^l(x) = \frac{1}{C_l H_l W_l} F^l(x) F^l(x)^\top \in \mathbb{R}^{C_l \times C_l},
\qquad \mathcal{L}_{style}(x, s) = \sum_l w_l \|G^l(x) - G^l(s)\|_F^2 .$$

The image $x$ (initialised to the content image) is the only thing trained:
$x \leftarrow \arg\min_x \alpha \mathcal{L}_{content}(x, c) + \beta \mathcal{L}_{style}(x, s)$, pixels kept in [0, 1].
Gatys et al. use an ImageNet-trained VGG-19; nothing may be downloaded here, so `random_features`
builds a fixed multi-scale CNN with random weights, which is known to carry texture statistics well
enough for style transfer (Ustyuzhaninov et al., 2017, "What does it take to generate natural
textures?"); the losses and the optimisation are the same for any feature extractor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from dlterms.nn.conv import Conv2d
from dlterms.optim import Adam

__all__ = ["gram_matrix", "content_loss", "style_loss", "FeatureExtractor", "random_features", "stylize", "StyleResult"]


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """G = F F^T / (C H W) for feature maps f (B, C, H, W): (B, C, C)."""
    if f.dim() != 4:
        raise ValueError(f"feature maps must be (B, C, H, W), got shape {tuple(f.shape)}")
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)  # F, (B, C, HW)
    return flat @ flat.transpose(1, 2) / (c * h * w)  # (B, C, C)


def content_loss(f: torch.Tensor, f_content: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two feature maps: ||F(x) - F(c)||^2 / (C H W), averaged over the batch."""
    return (f - f_content).square().mean()


def style_loss(
    feats: Sequence[torch.Tensor], style_grams: Sequence[torch.Tensor], weights: Sequence[float] | None = None
) -> torch.Tensor:
    """sum_l w_l ||G^l(x) - G^l(s)||_F^2 (summed over Gram entries, averaged over the batch)."""
    if len(feats) != len(style_grams):
        raise ValueError(f"got {len(feats)} feature maps but {len(style_grams)} style Gram matrices")
    weights = [1.0] * len(feats) if weights is None else list(weights)
    return sum(w * (gram_matrix(f) - g).square().sum(dim=(1, 2)).mean() for w, f, g in zip(weights, feats, style_grams))


class FeatureExtractor(nn.Module):
    """Runs `layers` in order and returns the outputs of the blocks whose index is in `taps`."""

    def __init__(self, layers: Sequence[nn.Module], taps: Sequence[int]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        bad = [t for t in taps if not 0 <= t < len(layers)]
        if bad:
            raise ValueError(f"taps {bad} are not layer indices 0..{len(layers) - 1}")
        self.taps = tuple(taps)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def random_features(
    channels: Sequence[int] = (32, 64, 128), in_channels: int = 3, generator: torch.Generator | None = None
) -> FeatureExtractor:
    """A fixed CNN with random weights: per block a 3x3 conv (stride 2 after the first block) + ReLU,
    every block tapped. Weights are N(0, 2 / fan_in) (He), zero-mean per filter; gradients off."""
    from dlterms.nn.activations import ReLU

    layers: list[nn.Module] = []
    c_prev = in_channels
    for i, c in enumerate(channels):
        conv = Conv2d(c_prev, c, 3, stride=1 if i == 0 else 2, padding=1)
        with torch.no_grad():
            w = torch.randn(conv.weight.shape, generator=generator) * (2.0 / (c_prev * 9)) ** 0.5
            conv.weight.copy_(w - w.mean(dim=(1, 2, 3), keepdim=True))
            conv.bias.zero_()
        layers.append(nn.Sequential(conv, ReLU()))
        c_prev = c
    net = FeatureExtractor(layers, taps=range(len(channels)))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


@dataclass
class StyleResult:
    image: torch.Tensor  # (1, C, H, W), in [0, 1]
    content_loss: list[float] = field(default_factory=list)  # per step
    style_loss: list[float] = field(default_factory=list)


def stylize(
    features: Callable[[torch.Tensor], list[torch.Tensor]],
    content: torch.Tensor,
    style: torch.Tensor,
    content_layer: int = -1,
    steps: int = 200,
    lr: float = 0.02,
    content_weight: float = 1.0,
    style_weight: float = 1e3,
    style_layer_weights: Sequence[float] | None = None,
    init: torch.Tensor | None = None,
) -> StyleResult:
    """Optimise x (init: the content image) with Adam to minimise alpha L_content + beta L_style.

    content, style: (1, C, H, W) images in [0, 1] (sizes may differ: Gram matrices are C x C).
    content_layer: index into the list `features` returns.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    with torch.no_grad():
        target = features(content)[content_layer]  # F^{l_c}(c)
        grams = [gram_matrix(f) for f in features(style)]  # G^l(s)
    x = (content if init is None else init).detach().clone().requires_grad_(True)
    opt = Adam([x], lr=lr)
    res = StyleResult(image=x)
    for _ in range(steps):
        opt.zero_grad()
        feats = features(x)
        lc = content_loss(feats[content_layer], target)
        ls = style_loss(feats, grams, style_layer_weights)
        (content_weight * lc + style_weight * ls).backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)  # keep a valid image
        res.content_loss.append(lc.item())
        res.style_loss.append(ls.item())
    with torch.no_grad():  # the losses of the final image
        feats = features(x)
        res.content_loss.append(float(content_loss(feats[content_layer], target)))
        res.style_loss.append(float(style_loss(feats, grams, style_layer_weights)))
    res.image = x.detach()
    return res
