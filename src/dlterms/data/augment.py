r"""Data augmentation: seeded, composable, label-preserving transforms of image and signal batches.

Augmentation trains on $T(x)$ with the label of $x$, for transforms $T$ drawn at random each time an
example is used (Simard, Steinkraus & Platt, "Best Practices for Convolutional Neural Networks Applied
to Visual Document Analysis", ICDAR 2003; Krizhevsky, Sutskever & Hinton, 2012). Each transform here
draws one random parameter per example from a `torch.Generator`, so a seeded generator reproduces the
exact same augmented batches.

Images are (B, C, H, W); signals are (B, L) or (B, C, L). With zero fill outside the input:

- **whole-pixel shift** by $(\delta_y, \delta_x) \in \{-s..s\}^2$: $x'_{i,j} = x_{i - \delta_y,\, j - \delta_x}$;
- **crop** of an $h \times w$ window at a random offset, after zero padding by $p$ (with $p$ = 0 and
  $h, w$ the input size this is the identity; with $h, w$ = input size and $p > 0$ it is a shift);
- **rotation** by $\theta \sim U(-\theta_{max}, \theta_{max})$ about the image centre, by inverse
  mapping and bilinear interpolation: output pixel $u$ takes the value at $R_{-\theta}(u - c) + c$,
  interpolated from its four neighbours with weights $(1-a)(1-b), a(1-b), (1-a)b, ab$;
- **Gaussian noise**: $x' = x + \sigma \varepsilon$, $\varepsilon \sim \mathcal N(0, I)$;
- **signal shift** by $\delta \in \{-s..s\}$ along the last axis (zero fill, or wrap-around with
  `circular=True`).

Every transform is a callable `t(x, generator=None) -> x'`; `Compose([...])` chains them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "Compose",
    "RandomShift",
    "RandomCrop",
    "RandomRotation",
    "GaussianNoise",
    "RandomSignalShift",
    "shift_images",
    "rotate_images",
    "shift_signals",
]


def _check_images(x: torch.Tensor, who: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{who} expects images (B, C, H, W), got shape {tuple(x.shape)}")


def _randint(low: int, high: int, n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """n integers uniform in [low, high], drawn on the CPU (so a CPU generator works for any device)."""
    return torch.randint(low, high + 1, (n,), generator=generator).to(device)


def shift_images(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Shift each image b by whole pixels (dy[b] down, dx[b] right), filling with zeros. x: (B, C, H, W)."""
    _check_images(x, "shift_images")
    B, C, H, W = x.shape
    rows = torch.arange(H, device=x.device).view(1, H) - dy.view(B, 1)  # (B, H): source row of each output row
    cols = torch.arange(W, device=x.device).view(1, W) - dx.view(B, 1)  # (B, W)
    valid = ((rows >= 0) & (rows < H)).view(B, 1, H, 1) & ((cols >= 0) & (cols < W)).view(B, 1, 1, W)
    r = rows.clamp(0, H - 1).view(B, 1, H, 1).expand(B, C, H, W)
    c = cols.clamp(0, W - 1).view(B, 1, 1, W).expand(B, C, H, W)
    out = x.gather(2, r).gather(3, c)  # out[b, k, i, j] = x[b, k, rows[b, i], cols[b, j]]
    return out * valid.to(x.dtype)


def rotate_images(x: torch.Tensor, angle_deg: torch.Tensor) -> torch.Tensor:
    """Rotate each image b by angle_deg[b] (counter-clockwise) about its centre, bilinear, zero fill."""
    _check_images(x, "rotate_images")
    B, C, H, W = x.shape
    theta = angle_deg.to(x.dtype).view(B, 1, 1) * (math.pi / 180.0)
    cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
    yy, xx = torch.meshgrid(
        torch.arange(H, device=x.device, dtype=x.dtype), torch.arange(W, device=x.device, dtype=x.dtype), indexing="ij"
    )  # (H, W)
    u, v = xx - cx, yy - cy  # output coordinates relative to the centre (x right, y down)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # inverse map: source = R(-theta) (u, v) + c; with y pointing down a counter-clockwise turn on screen
    src_x = cos * u - sin * v + cx  # (B, H, W)
    src_y = sin * u + cos * v + cy
    x0, y0 = torch.floor(src_x), torch.floor(src_y)
    a, b = src_x - x0, src_y - y0  # fractional offsets
    flat = x.reshape(B, C, H * W)
    out = torch.zeros_like(flat)
    for oy, ox, w in ((0, 0, (1 - a) * (1 - b)), (0, 1, a * (1 - b)), (1, 0, (1 - a) * b), (1, 1, a * b)):
        px, py = x0 + ox, y0 + oy  # one of the four neighbours
        inside = (px >= 0) & (px <= W - 1) & (py >= 0) & (py <= H - 1)
        idx = (py.clamp(0, H - 1) * W + px.clamp(0, W - 1)).long().view(B, 1, H * W).expand(B, C, H * W)
        out = out + flat.gather(2, idx) * (w * inside).view(B, 1, H * W)
    return out.view(B, C, H, W)


def shift_signals(x: torch.Tensor, shift: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """Shift each signal b along its last axis by shift[b] steps (positive: later), zero fill or wrap."""
    if x.dim() not in (2, 3):
        raise ValueError(f"shift_signals expects signals (B, L) or (B, C, L), got shape {tuple(x.shape)}")
    B, L = x.shape[0], x.shape[-1]
    src = torch.arange(L, device=x.device).view(1, L) - shift.view(B, 1)  # (B, L): source index
    valid = (src >= 0) & (src < L)
    src = src % L if circular else src.clamp(0, L - 1)
    if x.dim() == 3:
        out = x.gather(2, src.view(B, 1, L).expand_as(x))
        return out if circular else out * valid.view(B, 1, L).to(x.dtype)
    out = x.gather(1, src)
    return out if circular else out * valid.to(x.dtype)


class RandomShift:
    """Shift every image by whole pixels, independently in y and x, uniformly in {-max_shift..max_shift}."""

    def __init__(self, max_shift: int = 1):
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift must be a non-negative integer number of pixels, got {max_shift!r}")
        self.max_shift = max_shift

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(x, "RandomShift")
        s = self.max_shift
        dy = _randint(-s, s, len(x), generator, x.device)
        dx = _randint(-s, s, len(x), generator, x.device)
        return shift_images(x, dy, dx)

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift})"


class RandomCrop:
    """Zero-pad by `padding`, then cut a `size` window at a random offset per image."""

    def __init__(self, size: int | tuple[int, int], padding: int = 0):
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be a positive int or (h, w), got {size}")
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.size, self.padding = size, padding

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(x, "RandomCrop")
        B, C, H, W = x.shape
        p, (h, w) = self.padding, self.size
        if h > H + 2 * p or w > W + 2 * p:
            raise ValueError(f"crop size {self.size} is larger than the padded image ({H + 2 * p}, {W + 2 * p})")
        padded = torch.zeros(B, C, H + 2 * p, W + 2 * p, dtype=x.dtype, device=x.device)
        padded[:, :, p : p + H, p : p + W] = x
        top = _randint(0, H + 2 * p - h, B, generator, x.device)
        left = _randint(0, W + 2 * p - w, B, generator, x.device)
        rows = (top.view(B, 1) + torch.arange(h, device=x.device)).view(B, 1, h, 1).expand(B, C, h, W + 2 * p)
        out = padded.gather(2, rows)  # (B, C, h, W + 2p)
        cols = (left.view(B, 1) + torch.arange(w, device=x.device)).view(B, 1, 1, w).expand(B, C, h, w)
        return out.gather(3, cols)  # (B, C, h, w)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomRotation:
    """Rotate every image by an angle uniform in [-degrees, degrees] (bilinear, zero fill)."""

    def __init__(self, degrees: float):
        if degrees < 0:
            raise ValueError(f"degrees must be >= 0, got {degrees}")
        self.degrees = float(degrees)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(x, "RandomRotation")
        angle = (torch.rand(len(x), generator=generator) * 2 - 1) * self.degrees
        return rotate_images(x, angle.to(x.device))

    def __repr__(self) -> str:
        return f"RandomRotation(degrees={self.degrees})"


class GaussianNoise:
    """Add N(0, std^2) noise to every element."""

    def __init__(self, std: float):
        if std < 0:
            raise ValueError(f"std must be >= 0, got {std}")
        self.std = float(std)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return x + self.std * eps

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std})"


class RandomSignalShift:
    """Shift every 1-D signal along its last axis by an integer uniform in {-max_shift..max_shift}."""

    def __init__(self, max_shift: int, circular: bool = False):
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift must be a non-negative integer number of steps, got {max_shift!r}")
        self.max_shift, self.circular = max_shift, circular

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        s = _randint(-self.max_shift, self.max_shift, len(x), generator, x.device)
        return shift_signals(x, s, self.circular)

    def __repr__(self) -> str:
        return f"RandomSignalShift(max_shift={self.max_shift}, circular={self.circular})"


class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence):
        if not all(callable(t) for t in transforms):
            raise ValueError(f"every transform must be callable, got {list(transforms)}")
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"
