"""Real photographs as tensors, from the sample images scikit-image ships inside its package.

Nothing is downloaded: every name in `PHOTOS` is a file bundled with scikit-image (checked offline:
camera, astronaut, coffee, chelsea, rocket, coins, moon, text, brick, grass, gravel,
immunohistochemistry, page, clock, cell, hubble_deep_field). Images come back as float32 tensors
in [0, 1], channels first: (1, H, W) grey or (3, H, W) colour, optionally resized (by area
averaging, scikit-image's anti-aliased `resize`) and converted to grey.

Also here: integer translation of image batches with zero fill (used to measure shift robustness).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["PHOTOS", "photo", "translate", "rgb_to_grey"]

PHOTOS = (
    "camera",
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "moon",
    "text",
    "brick",
    "grass",
    "gravel",
    "immunohistochemistry",
    "page",
    "clock",
    "cell",
    "hubble_deep_field",
)


@functools.lru_cache(maxsize=16)
def _load(name: str) -> np.ndarray:
    from skimage import data

    return np.asarray(getattr(data, name)())


def rgb_to_grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.709 luma, as scikit-image's rgb2gray: (..., 3, H, W) -> (..., 1, H, W)."""
    if x.shape[-3] != 3:
        raise ValueError(f"expected 3 colour channels in dimension -3, got shape {tuple(x.shape)}")
    w = torch.tensor([0.2125, 0.7154, 0.0721], dtype=x.dtype, device=x.device)
    return (x * w.view(3, 1, 1)).sum(dim=-3, keepdim=True)


def photo(name: str = "camera", size: int | tuple[int, int] | None = None, grey: bool = False) -> torch.Tensor:
    """A bundled scikit-image photo as a float32 tensor in [0, 1], (C, H, W) with C = 1 or 3.

    Args:
        name: one of `PHOTOS`.
        size: resize to (H, W) (an int gives a square) with anti-aliasing; None keeps the original.
        grey: convert colour photos to one luma channel.
    """
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; bundled ones are {', '.join(PHOTOS)}")
    img = _load(name).astype(np.float32)
    img = img / 255.0 if img.max() > 1.0 else img
    if img.ndim == 2:
        img = img[None]  # (1, H, W)
    else:
        img = img[..., :3].transpose(2, 0, 1)  # (H, W, C) -> (C, H, W), alpha dropped
    if size is not None:
        from skimage.transform import resize

        hw = (size, size) if isinstance(size, int) else tuple(size)
        if len(hw) != 2 or min(hw) < 1:
            raise ValueError(f"size must be a positive int or (H, W), got {size!r}")
        img = np.stack([resize(c, hw, anti_aliasing=True, preserve_range=True) for c in img]).astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(img)).clamp(0.0, 1.0)
    if grey and x.shape[0] == 3:
        x = rgb_to_grey(x)
    return x


def translate(x: torch.Tensor, dy: int | torch.Tensor, dx: int | torch.Tensor) -> torch.Tensor:
    """Shift images (B, C, H, W) by whole pixels, down by dy and right by dx, filling with zeros.

    dy and dx are ints (one shift for the batch) or (B,) integer tensors (one per image).
    """
    if x.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    dy = torch.as_tensor(dy, device=x.device).expand(b)
    dx = torch.as_tensor(dx, device=x.device).expand(b)
    # output pixel (i, j) reads input pixel (i - dy, j - dx) when that lies inside the image
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy.view(b, 1, 1)  # (B, H, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx.view(b, 1, 1)  # (B, 1, W)
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)  # (B, 1, H, W)
    flat = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).view(b, 1, h * w)  # (B, 1, H*W)
    out = x.flatten(2).gather(2, flat.expand(b, x.shape[1], h * w)).view_as(x)
    return out * inside
