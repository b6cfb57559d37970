"""Convolution: hand-set Sobel kernels, run through our im2col `conv2d`, find the edges of a real photo.

Measured: (1) our conv2d equals torch's to 1e-5 (the spec's tolerance) on the photo in float32 and on
200 random shapes/strides/paddings/dilations/groups in float64, and every output has the size the formula
floor((n + 2p - d(k-1) - 1)/s) + 1 predicts; (2) the Sobel magnitude equals scikit-image's
`filters.sobel` in the image interior (a reference edge filter, to 1e-5), and is several times larger
on the edges scikit-image's Canny detector marks than elsewhere, i.e. the convolution finds edges.

Thresholds: docs/experiments.md#convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dlterms.data.images import photo
from dlterms.nn.conv import conv2d, conv_output_size
from dlterms.run import Run, experiment

# Sobel (1968): a central difference along one axis, smoothed by [1, 2, 1] along the other
SOBEL_X = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])  # responds to vertical edges
SOBEL_Y = SOBEL_X.t().contiguous()  # responds to horizontal edges


@dataclass(frozen=True)
class Config:
    """Parameters of the convolution experiment; the defaults are the recorded run."""

    n_random: int = 200  # random shape cases for the reference and output-size checks
    size: int = 256  # side of the (square, grey) camera photo, in pixels
    canny_sigma: float = 2.0  # smoothing of the Canny edge detector that marks the edge pixels

    def __post_init__(self) -> None:
        if self.n_random < 1:
            raise ValueError(f"n_random must be >= 1, got {self.n_random!r}")
        if not 16 <= self.size <= 512:
            raise ValueError(f"size must be in [16, 512], got {self.size!r}")
        if not self.canny_sigma > 0:
            raise ValueError(f"canny_sigma must be > 0, got {self.canny_sigma!r}")


@experiment("convolution", config=Config)
def convolution(run: Run, cfg: Config) -> None:
    from skimage.feature import canny
    from skimage.filters import sobel

    N_RANDOM = cfg.n_random
    img = photo("camera", size=cfg.size).to(run.device)  # (1, 256, 256) grey, in [0, 1]
    x = img.unsqueeze(0)  # (1, 1, H, W)
    w = torch.stack([SOBEL_X, SOBEL_Y]).unsqueeze(1).to(run.device)  # (2 kernels, 1 channel, 3, 3)
    g = conv2d(x, w, padding=1)  # (1, 2, H, W): g_x, g_y
    err_photo = (g - F.conv2d(x, w, padding=1)).abs().max().item()
    mag = g.square().sum(1).sqrt()[0]  # |grad| = sqrt(g_x^2 + g_y^2), (H, W)

    # scikit-image scales each kernel by 1/4 and returns sqrt((g_x^2 + g_y^2) / 2)
    ref = sobel(img[0].cpu().numpy().astype(np.float64))
    ours = (mag / 4 / np.sqrt(2)).cpu().numpy()
    err_sk = float(np.abs(ours - ref)[1:-1, 1:-1].max())  # interior: the borders use different padding

    edges = canny(img[0].cpu().numpy(), sigma=cfg.canny_sigma)
    inner = np.zeros_like(edges)
    inner[2:-2, 2:-2] = True
    m = mag.cpu().numpy()
    ratio = float(m[edges & inner].mean() / m[~edges & inner].mean())

    # our conv2d against torch on random configurations, and the output-size formula
    rng = run.rng(1)
    worst, size_ok = 0.0, 0
    gen = run.generator(2)
    for _ in range(N_RANDOM):
        groups = int(rng.choice([1, 2, 4]))
        c_in, c_out = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        k, s, d, p = (tuple(int(v) for v in rng.integers(lo, hi, 2)) for lo, hi in ((1, 6), (1, 4), (1, 4), (0, 4)))
        hw = tuple(int(rng.integers(max(1, di * (ki - 1) + 1 - 2 * pi), 24)) for ki, di, pi in zip(k, d, p))
        # float64, so the comparison measures the algorithm rather than float32 summation order
        f64 = {"generator": gen, "dtype": torch.float64}
        xi = torch.randn(int(rng.integers(1, 4)), c_in, *hw, **f64).to(run.device)
        wi = torch.randn(c_out, c_in // groups, *k, **f64).to(run.device)
        bi = torch.randn(c_out, **f64).to(run.device)
        y = conv2d(xi, wi, bi, s, p, d, groups)
        worst = max(worst, (y - F.conv2d(xi, wi, bi, s, p, d, groups)).abs().max().item())
        size_ok += tuple(y.shape[2:]) == tuple(conv_output_size(n, *a) for n, *a in zip(hw, k, s, p, d))

    run.metric("max_abs_error_vs_torch_photo", err_photo)
    run.metric("max_abs_error_vs_torch_random", worst, key=True)
    run.metric("max_abs_error_vs_skimage_sobel", err_sk)
    run.metric("edge_to_background_magnitude_ratio", ratio)
    run.metric("output_size_formula_cases", f"{size_ok}/{N_RANDOM}")
    run.check_le("our conv2d equals torch's on the photo", err_photo, 1e-5, strict=True)
    run.check_le(
        f"our conv2d equals torch's on {N_RANDOM} random configurations (stride, padding, dilation, groups; float64)",
        worst,
        1e-5,
        strict=True,
    )
    run.check(
        "the output-size formula holds for every random shape",
        size_ok == N_RANDOM,
        observed=f"{size_ok}/{N_RANDOM}",
        expected=f"{N_RANDOM}/{N_RANDOM}",
    )
    run.check_le("Sobel magnitude equals scikit-image's filters.sobel in the interior", err_sk, 1e-5, strict=True)
    run.check_ge("the magnitude is >= 3x larger on Canny's edge pixels than elsewhere", ratio, 3.0)

    with run.figure(
        "sobel-edges",
        alt="the camera photo, its horizontal and vertical Sobel responses, and the gradient magnitude",
        figsize=(10, 3),
    ) as fig:
        axes = fig.subplots(1, 4)
        panels = (
            (img[0], "photo (skimage camera)", "gray"),
            (g[0, 0], "g_x (Sobel x)", "RdBu"),
            (g[0, 1], "g_y (Sobel y)", "RdBu"),
            (mag, "|grad| edge map", "magma"),
        )
        for ax, (a, title, cmap) in zip(axes, panels):
            a = a.detach().cpu()
            lim = a.abs().max().item() if cmap == "RdBu" else None
            ax.imshow(a, cmap=cmap, vmin=-lim if lim else None, vmax=lim)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
