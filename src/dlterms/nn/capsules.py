r"""Capsules: vector-valued units, the squash nonlinearity, and dynamic routing by agreement.

Sabour, Frosst & Hinton (2017), "Dynamic Routing Between Capsules". A capsule outputs a vector whose
*length* is the probability that an entity is present and whose *direction* encodes its pose.

Squash keeps the direction and maps the length into [0, 1):

$$v = \frac{\|s\|^2}{1 + \|s\|^2} \frac{s}{\|s\|}.$$

Primary capsules are a convolution whose output channels are grouped into capsules of dimension $d$:
every position of every capsule type is one capsule $u_i \in \mathbb{R}^{d}$, squashed.

Routing: each lower capsule $i$ predicts each upper capsule $j$ through its own matrix,
$\hat u_{j|i} = W_{ij} u_i$ (computed with one `einsum`; a broadcast matmul was ~5x slower here).
With logits $b_{ij} = 0$, repeat $r$ times:

$$c_{ij} = \mathrm{softmax}_j(b_{ij}), \qquad s_j = \sum_i c_{ij} \hat u_{j|i}, \qquad v_j = \mathrm{squash}(s_j),
\qquad b_{ij} \leftarrow b_{ij} + \hat u_{j|i} \cdot v_j .$$

Predictions that agree with the upper capsule's output get more of their coupling $c_{ij}$: the
couplings start uniform (entropy $\log J$) and sharpen with each iteration.

Margin loss, per class capsule $k$ with $T_k = 1$ for the true class:
$L = \sum_k T_k \max(0, m^+ - \|v_k\|)^2 + \lambda (1 - T_k) \max(0, \|v_k\| - m^-)^2$,
$m^+ = 0.9$, $m^- = 0.1$, $\lambda = 0.5$. Shapes: batch first, capsules (B, N, D).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlterms.nn.activations import softmax
from dlterms.nn.conv import Conv2d

__all__ = ["squash", "PrimaryCapsules", "RoutingCapsules", "dynamic_routing", "margin_loss", "coupling_entropy"]


def squash(s: torch.Tensor, dim: int = -1, eps: float = 1e-8) -> torch.Tensor:
    """v = |s|^2 / (1 + |s|^2) * s / |s| along `dim` (eps keeps the zero vector at zero, gradient finite)."""
    sq = s.square().sum(dim=dim, keepdim=True)  # |s|^2
    return sq / (1 + sq) * s / torch.sqrt(sq + eps)


def dynamic_routing(u_hat: torch.Tensor, iterations: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Routing by agreement.

    Args:
        u_hat: predictions (B, N_in, N_out, D) of every upper capsule by every lower one.
    Returns:
        v (B, N_out, D), the upper capsules, and c (B, N_in, N_out), the final coupling coefficients.
    """
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if u_hat.dim() != 4:
        raise ValueError(f"u_hat must be (B, N_in, N_out, D), got shape {tuple(u_hat.shape)}")
    b = torch.zeros(u_hat.shape[:3], dtype=u_hat.dtype, device=u_hat.device)  # b_ij = 0, (B, N_in, N_out)
    for r in range(iterations):
        c = softmax(b, dim=2)  # c_ij = softmax_j b_ij
        s = torch.einsum("bij,bijd->bjd", c, u_hat)  # s_j = sum_i c_ij u_hat_j|i, (B, N_out, D)
        v = squash(s)  # (B, N_out, D)
        if r < iterations - 1:
            b = b + torch.einsum("bijd,bjd->bij", u_hat, v)  # b_ij += u_hat_j|i . v_j
    return v, c


def coupling_entropy(c: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of each lower capsule's coupling distribution c_i. over upper capsules."""
    return -(c * c.clamp_min(1e-12).log()).sum(dim=-1).mean()


class PrimaryCapsules(nn.Module):
    """A convolution whose C_out = capsule_types * capsule_dim channels are read as capsules:
    (B, C_in, H, W) -> (B, capsule_types * H_out * W_out, capsule_dim), squashed."""

    def __init__(
        self,
        in_channels: int,
        capsule_types: int,
        capsule_dim: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ):
        super().__init__()
        for name, v in (("capsule_types", capsule_types), ("capsule_dim", capsule_dim)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.conv = Conv2d(in_channels, capsule_types * capsule_dim, kernel_size, stride=stride, padding=padding)
        self.capsule_types, self.capsule_dim = capsule_types, capsule_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)  # (B, T*D, H, W)
        b, _, h, w = y.shape
        u = y.view(b, self.capsule_types, self.capsule_dim, h, w).permute(0, 1, 3, 4, 2)  # (B, T, H, W, D)
        return squash(u.reshape(b, self.capsule_types * h * w, self.capsule_dim))  # (B, N, D)

    def extra_repr(self) -> str:
        return f"capsule_types={self.capsule_types}, capsule_dim={self.capsule_dim}"


class RoutingCapsules(nn.Module):
    """Upper capsules from lower ones by dynamic routing: (B, N_in, D_in) -> (B, N_out, D_out).

    W_ij in R^{D_out x D_in} for every pair (i, j): N_in * N_out * D_out * D_in parameters.
    After a forward pass, `last_coupling` holds c (B, N_in, N_out).
    """

    def __init__(self, in_capsules: int, in_dim: int, out_capsules: int, out_dim: int, iterations: int = 3):
        super().__init__()
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
        self.weight = nn.Parameter(torch.randn(in_capsules, out_capsules, out_dim, in_dim) / math.sqrt(in_dim))
        self.in_capsules, self.in_dim, self.out_capsules, self.out_dim = in_capsules, in_dim, out_capsules, out_dim
        self.iterations = iterations
        self.last_coupling: torch.Tensor | None = None

    def forward(self, u: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
        if u.shape[1:] != (self.in_capsules, self.in_dim):
            raise ValueError(f"expected lower capsules (B, {self.in_capsules}, {self.in_dim}), got {tuple(u.shape)}")
        u_hat = torch.einsum("ijdk,bik->bijd", self.weight, u)  # u_hat_j|i = W_ij u_i, (B, N_in, N_out, D_out)
        v, c = dynamic_routing(u_hat, iterations or self.iterations)
        self.last_coupling = c.detach()
        return v  # (B, N_out, D_out)

    def extra_repr(self) -> str:
        return (
            f"in_capsules={self.in_capsules}, in_dim={self.in_dim}, out_capsules={self.out_capsules}, "
            f"out_dim={self.out_dim}, iterations={self.iterations}"
        )


def margin_loss(
    lengths: torch.Tensor, target: torch.Tensor, m_plus: float = 0.9, m_minus: float = 0.1, lam: float = 0.5
) -> torch.Tensor:
    """Mean over the batch of sum_k T_k max(0, m+ - |v_k|)^2 + lam (1 - T_k) max(0, |v_k| - m-)^2.

    lengths: (B, K) capsule lengths |v_k|; target: (B,) class indices.
    """
    if lengths.dim() != 2 or target.shape != lengths.shape[:1]:
        raise ValueError(
            f"lengths must be (B, K) and target (B,), got {tuple(lengths.shape)} and {tuple(target.shape)}"
        )
    t = torch.zeros_like(lengths).scatter_(1, target.view(-1, 1), 1.0)  # T_k one-hot
    present = t * (m_plus - lengths).clamp_min(0).square()
    absent = lam * (1 - t) * (lengths - m_minus).clamp_min(0).square()
    return (present + absent).sum(dim=1).mean()
