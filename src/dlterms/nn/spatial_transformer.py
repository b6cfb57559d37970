r"""Spatial transformer: a localisation net predicts an affine map, a sampler warps the input with it.

Jaderberg, Simonyan, Zisserman & Kavukcuoglu (2015), "Spatial Transformer Networks". Three parts:

1. Localisation net: $\theta = f_{loc}(U) \in \mathbb{R}^{2 \times 3}$, initialised to the identity
   transform (last layer's weights 0, bias $(1, 0, 0, 0, 1, 0)$) so training starts from "no warp".
2. Grid generator (`affine_grid`): for every output pixel $i$ with normalised coordinates
   $(x_i^t, y_i^t) \in [-1, 1]^2$, the input location to read,

   $$\begin{pmatrix} x_i^s \\ y_i^s \end{pmatrix} = \theta \begin{pmatrix} x_i^t \\ y_i^t \\ 1 \end{pmatrix}.$$

3. Sampler (`grid_sample`, bilinear): with $(u, v)$ the source location in pixel units,

   $$V_i^c = \sum_{n}^{H} \sum_{m}^{W} U^c_{nm} \max(0, 1 - |u_i - m|) \max(0, 1 - |v_i - n|),$$

   i.e. the four neighbouring pixels weighted by their overlap; pixels outside the image count as 0.
   The weights are differentiable in $(u, v)$, so gradients reach $\theta$ and the localisation net.

Normalised coordinates follow PyTorch: with `align_corners=True`, -1 and 1 are the centres of the
corner pixels, $u = (x + 1)(W - 1)/2$; with `align_corners=False`, they are the outer edges of the
corner pixels, $u = ((x + 1) W - 1)/2$. Grids are (B, H_out, W_out, 2) with (x, y) last, as torch's.

The sampler is written twice: `grid_sample_equations` is the sum above over every pixel, and
`grid_sample`, which runs by default, reads only the four pixels whose weight can be non-zero; a test
keeps the two equal, values and gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from dlterms.nn._fastpath import declare

__all__ = [
    "grid_sample_equations",
    "affine_grid",
    "grid_sample",
    "SpatialTransformer",
    "identity_theta",
    "rotation_theta",
]


def _check_sample_args(input: torch.Tensor, grid: torch.Tensor) -> None:
    if input.dim() != 4:
        raise ValueError(f"input must be (B, C, H, W), got shape {tuple(input.shape)}")
    if grid.dim() != 4 or grid.shape[-1] != 2:
        raise ValueError(f"grid must be (B, H_out, W_out, 2), got shape {tuple(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid batch (dim 0) is {grid.shape[0]} but input batch is {input.shape[0]}")


def _pixel_coords(grid: torch.Tensor, h: int, w: int, align_corners: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised grid (x, y) -> pixel coordinates (u, v), each (B, H_out, W_out)."""
    gx, gy = grid[..., 0], grid[..., 1]
    if align_corners:
        return (gx + 1) * (w - 1) / 2, (gy + 1) * (h - 1) / 2
    return ((gx + 1) * w - 1) / 2, ((gy + 1) * h - 1) / 2


# --------------------------------------------------------------------------- the sampler, as written


def grid_sample_equations(input: torch.Tensor, grid: torch.Tensor, align_corners: bool = False) -> torch.Tensor:
    r"""Bilinear sampling as the sum is written: $V_i^c = \sum_n \sum_m U^c_{nm} \max(0, 1 - |u_i - m|)
    \max(0, 1 - |v_i - n|)$ over every pixel (n, m) of input (B, C, H, W), at grid (B, H_out, W_out, 2)
    (normalised (x, y)); output (B, C, H_out, W_out). The kernel is separable, so the sum is two
    products with weight matrices, (H_out W_out, W) and (H_out W_out, H), per example."""
    _check_sample_args(input, grid)
    b, c, h, w = input.shape
    ho, wo = grid.shape[1:3]
    u, v = _pixel_coords(grid, h, w, align_corners)  # (B, Ho, Wo)
    m = torch.arange(w, dtype=u.dtype, device=u.device)
    n = torch.arange(h, dtype=v.dtype, device=v.device)
    # k(u_i - m) = max(0, 1 - |u_i - m|) and k(v_i - n): (B, Ho*Wo, W) and (B, Ho*Wo, H)
    ku = (1 - (u.reshape(b, -1, 1) - m).abs()).clamp_min(0)
    kv = (1 - (v.reshape(b, -1, 1) - n).abs()).clamp_min(0)
    # V_i^c = sum_n kv_in sum_m U^c_nm ku_im
    out = torch.einsum("bcnm,bim,bin->bci", input, ku, kv)
    return out.reshape(b, c, ho, wo)


def _base_coords(n: int, align_corners: bool, like: torch.Tensor) -> torch.Tensor:
    """Normalised coordinates of n pixel centres along one axis."""
    i = torch.arange(n, dtype=like.dtype, device=like.device)
    if align_corners:
        return (2 * i / (n - 1) - 1) if n > 1 else torch.zeros_like(i)  # corners' centres at -1, 1
    return (2 * i + 1) / n - 1  # corners' outer edges at -1, 1


def affine_grid(theta: torch.Tensor, size, align_corners: bool = False) -> torch.Tensor:
    """Sampling grid (B, H, W, 2) of the affine maps theta (B, 2, 3) for an output of size (B, C, H, W)."""
    if theta.dim() != 3 or theta.shape[1:] != (2, 3):
        raise ValueError(f"theta must be (B, 2, 3) affine matrices, got shape {tuple(theta.shape)}")
    if len(size) != 4:
        raise ValueError(f"size must be (B, C, H, W), got {tuple(size)}")
    b, _, h, w = size
    if theta.shape[0] != b:
        raise ValueError(f"theta has {theta.shape[0]} matrices (dim 0) but size asks for batch {b}")
    ys, xs = _base_coords(h, align_corners, theta), _base_coords(w, align_corners, theta)
    # target coordinates (x^t, y^t, 1) for every output pixel: (H, W, 3)
    base = torch.stack(
        [
            xs.view(1, w).expand(h, w),
            ys.view(h, 1).expand(h, w),
            torch.ones(h, w, dtype=theta.dtype, device=theta.device),
        ],
        dim=-1,
    )
    # (x^s, y^s) = theta (x^t, y^t, 1)^T: (B, H*W, 3) @ (B, 3, 2) -> (B, H*W, 2)
    grid = base.view(1, h * w, 3).expand(b, h * w, 3) @ theta.transpose(1, 2)
    return grid.view(b, h, w, 2)


def grid_sample(input: torch.Tensor, grid: torch.Tensor, align_corners: bool = False) -> torch.Tensor:
    """Bilinear sampling of input (B, C, H, W) at grid (B, H_out, W_out, 2) (normalised (x, y)),
    zeros outside the image: output (B, C, H_out, W_out) (`grid_sample_equations`), run by default.
    Matches `torch.nn.functional.grid_sample` with mode="bilinear", padding_mode="zeros"."""
    _check_sample_args(input, grid)
    b, c, h, w = input.shape
    ho, wo = grid.shape[1:3]
    # normalised -> pixel coordinates (u, v)
    u, v = _pixel_coords(grid, h, w, align_corners)
    u0, v0 = u.floor(), v.floor()
    flat = input.reshape(b, c, h * w)
    out = 0
    # the four neighbours (m, n) in {u0, u0+1} x {v0, v0+1}, weight max(0, 1-|u-m|) max(0, 1-|v-n|)
    for m, wu in ((u0, 1 - (u - u0)), (u0 + 1, u - u0)):
        for n, wv in ((v0, 1 - (v - v0)), (v0 + 1, v - v0)):
            inside = (m >= 0) & (m <= w - 1) & (n >= 0) & (n <= h - 1)  # zero padding outside
            idx = (n.clamp(0, h - 1) * w + m.clamp(0, w - 1)).long().view(b, 1, ho * wo)
            vals = flat.gather(2, idx.expand(b, c, ho * wo)).view(b, c, ho, wo)  # U_{nm}, (B, C, Ho, Wo)
            out = out + vals * (wu * wv * inside).unsqueeze(1)
    return out


declare(
    grid_sample_equations,
    grid_sample,
    saves="Only the four pixels around each sampling point can have a non-zero weight, so it gathers those "
    "four instead of weighting all H x W pixels: 4 reads per output value, whatever the image size.",
)


def identity_theta(batch: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(batch, 2, 3) identity affine maps."""
    return torch.eye(2, 3, dtype=dtype, device=device).expand(batch, 2, 3).clone()


def rotation_theta(
    angle: torch.Tensor, scale: torch.Tensor | float = 1.0, shift: torch.Tensor | None = None
) -> torch.Tensor:
    """Affine maps (B, 2, 3) that read the input rotated by `angle` (radians, (B,)), zoomed by 1/scale,
    and moved by `shift` ((B, 2), normalised units)."""
    cos, sin = angle.cos(), angle.sin()
    a = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    a = a * torch.as_tensor(scale, dtype=angle.dtype, device=angle.device).reshape(-1, 1, 1)
    t = torch.zeros(len(angle), 2, 1, dtype=angle.dtype, device=angle.device) if shift is None else shift.view(-1, 2, 1)
    return torch.cat([a, t], dim=2)


class SpatialTransformer(nn.Module):
    """theta = loc_head(localisation(x)); output = grid_sample(x, affine_grid(theta)).

    Args:
        localisation: module mapping the input (B, C, H, W) to features (B, loc_features).
        loc_features: size of those features; a Linear(loc_features, 6) initialised to the identity
            transform produces theta.
        output_size: (H_out, W_out) of the warped output (default: the input's).
        align_corners: coordinate convention (see the module docstring).
    """

    def __init__(
        self,
        localisation: nn.Module,
        loc_features: int,
        output_size: tuple[int, int] | None = None,
        align_corners: bool = False,
    ):
        super().__init__()
        from dlterms.nn.linear import Linear

        self.localisation = localisation
        self.fc_theta = Linear(loc_features, 6)
        with torch.no_grad():  # start at the identity: theta = (1 0 0; 0 1 0)
            self.fc_theta.weight.zero_()
            self.fc_theta.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))
        self.output_size, self.align_corners = output_size, align_corners
        self.last_theta: torch.Tensor | None = None

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_theta(self.localisation(x).flatten(1)).view(-1, 2, 3)  # (B, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x)
        self.last_theta = theta.detach()
        h, w = self.output_size or x.shape[2:]
        grid = affine_grid(theta, (x.shape[0], x.shape[1], h, w), self.align_corners)  # (B, h, w, 2)
        return grid_sample(x, grid, self.align_corners)  # (B, C, h, w)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, align_corners={self.align_corners}"
