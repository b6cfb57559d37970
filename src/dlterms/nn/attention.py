r"""Attention: scaled dot-product attention (the core every other form builds on), plus additive
(Bahdanau) and dot-product (Luong) attention for sequence-to-sequence models.

Scaled dot-product attention (Vaswani et al., 2017, "Attention Is All You Need"):

$$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V$$

where $M$ is 0 where a query may look and $-\infty$ where it may not (a causal or padding mask).
Shapes, batch first: queries (B, ..., T_q, d_k), keys (B, ..., T_k, d_k), values (B, ..., T_k, d_v).
"""

from __future__ import annotations

import math

import torch

__all__ = ["scaled_dot_product_attention", "causal_mask"]


def causal_mask(t_q: int, t_k: int | None = None, device=None) -> torch.Tensor:
    """Boolean (t_q, t_k) mask, True where query i may attend key j (j <= i)."""
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                                 training: bool = False,
                                 return_weights: bool = False):
    """softmax(q k^T / sqrt(d_k) + mask) v.

    Args:
        q: (..., T_q, d_k); k: (..., T_k, d_k); v: (..., T_k, d_v).
        mask: boolean, True = may attend (broadcast to (..., T_q, T_k)); or a float mask added to
            the scores (0 or -inf), as torch's `attn_mask` accepts.
        dropout_p: dropout on the attention weights (only when `training`).
        return_weights: also return the (..., T_q, T_k) weights.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dimension d_k, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same length T_k, got {k.shape[-2]} and {v.shape[-2]}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    d_k = q.shape[-1]
    # scores_ij = q_i . k_j / sqrt(d_k)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask
    weights = torch.softmax(scores, dim=-1)  # (..., T_q, T_k), rows sum to 1
    if dropout_p > 0.0 and training:
        keep = torch.rand_like(weights) >= dropout_p
        weights = weights * keep / (1.0 - dropout_p)
    out = weights @ v  # (..., T_q, d_v)
    return (out, weights) if return_weights else out
