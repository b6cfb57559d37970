r"""Attention: scaled dot-product attention (the core every other form builds on), plus additive
(Bahdanau) and dot-product (Luong) attention for sequence-to-sequence models.

Scaled dot-product attention (Vaswani et al., 2017, "Attention Is All You Need"):

$$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V$$

where $M$ is 0 where a query may look and $-\infty$ where it may not (a causal or padding mask).
Shapes, batch first: queries (B, ..., T_q, d_k), keys (B, ..., T_k, d_k), values (B, ..., T_k, d_v).

Additive attention (Bahdanau, Cho & Bengio, 2015, "Neural machine translation by jointly learning to
align and translate"): a small feed-forward network scores how well decoder state $s$ matches
encoder state $h_j$,

$$e_j = v^\top \tanh(W_q s + W_k h_j), \qquad \alpha_j = \frac{\exp e_j}{\sum_{j'} \exp e_{j'}}, \qquad
c = \sum_j \alpha_j h_j .$$

Dot-product attention (Luong, Pham & Manning, 2015, "Effective approaches to attention-based neural
machine translation") scores with a product instead: $e_j = s^\top h_j$ ("dot"), $e_j = s^\top W h_j$
("general"), optionally divided by $\sqrt{d}$ (the scaled form above). The weights $\alpha$ are an
alignment: which source positions the output at this step reads.
"""

from __future__ import annotations

import math

import torch

from dlterms.nn.activations import softmax
from dlterms.nn.dropout import dropout

__all__ = ["scaled_dot_product_attention", "causal_mask", "AdditiveAttention", "DotProductAttention"]


def causal_mask(t_q: int, t_k: int | None = None, device=None) -> torch.Tensor:
    """Boolean (t_q, t_k) mask, True where query i may attend key j (j <= i)."""
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
    return_weights: bool = False,
):
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
    weights = softmax(scores, dim=-1)  # (..., T_q, T_k), rows sum to 1
    weights = dropout(weights, dropout_p, training)  # on the weights, training only
    out = weights @ v  # (..., T_q, d_v)
    return (out, weights) if return_weights else out


# --------------------------------------------------------------------------- seq2seq attention


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax over the last dimension, with weight 0 where the boolean `mask` is False."""
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}")
        if mask.dim() == scores.dim() - 1:  # (B, T_k) key-padding mask -> (B, 1, T_k)
            mask = mask.unsqueeze(-2)
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1)


def _as_3d(query: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if query.dim() == 2:  # one query per example: (B, d) -> (B, 1, d)
        return query.unsqueeze(1), True
    if query.dim() != 3:
        raise ValueError(f"query must be (B, d) or (B, T_q, d), got shape {tuple(query.shape)}")
    return query, False


class AdditiveAttention(torch.nn.Module):
    """Bahdanau attention: e_j = v^T tanh(W_q s + W_k h_j), alpha = softmax(e), c = sum_j alpha_j h_j.

    Args:
        query_size: size of the query (decoder state) s.
        key_size: size of the keys (encoder states) h_j.
        hidden_size: size of the scoring network's hidden layer (the length of v).

    `forward(query, keys, values=None, mask=None, keys_proj=None)` with query (B, d_q) or (B, T_q, d_q),
    keys (B, T_k, d_k), values (B, T_k, d_v) (default: the keys), mask (B, T_k) or (B, T_q, T_k),
    True = may attend. Returns (context (B, [T_q,] d_v), weights (B, [T_q,] T_k)). A decoder that
    queries the same keys at every step can pass `keys_proj=attn.project_keys(keys)` to compute
    W_k h_j once.
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int):
        super().__init__()
        for name, v in (("query_size", query_size), ("key_size", key_size), ("hidden_size", hidden_size)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.query_size, self.key_size, self.hidden_size = query_size, key_size, hidden_size
        self.w_q = torch.nn.Parameter(torch.empty(hidden_size, query_size))
        self.w_k = torch.nn.Parameter(torch.empty(hidden_size, key_size))
        self.bias = torch.nn.Parameter(torch.zeros(hidden_size))
        self.v = torch.nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w in (self.w_q, self.w_k):
            bound = 1.0 / math.sqrt(w.shape[1])
            torch.nn.init.uniform_(w, -bound, bound)
        torch.nn.init.uniform_(self.v, -1.0 / math.sqrt(self.hidden_size), 1.0 / math.sqrt(self.hidden_size))
        torch.nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, hidden_size={self.hidden_size}"

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """W_k h_j + b for every key: (B, T_k, d_k) -> (B, T_k, A)."""
        if keys.dim() != 3 or keys.shape[-1] != self.key_size:
            raise ValueError(f"keys must be (B, T_k, {self.key_size}), got shape {tuple(keys.shape)}")
        return keys @ self.w_k.t() + self.bias  # (B, T_k, A)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        keys_proj: torch.Tensor | None = None,
    ):
        q, single = _as_3d(query)
        if q.shape[-1] != self.query_size:
            raise ValueError(f"query's last dimension must be query_size={self.query_size}, got {q.shape[-1]}")
        values = keys if values is None else values
        kp = self.project_keys(keys) if keys_proj is None else keys_proj  # (B, T_k, A)
        qp = q @ self.w_q.t()  # (B, T_q, A)
        # e_ij = v^T tanh(W_q s_i + W_k h_j + b): (B, T_q, 1, A) + (B, 1, T_k, A) -> (B, T_q, T_k)
        e = torch.tanh(qp.unsqueeze(2) + kp.unsqueeze(1)) @ self.v
        # alpha_ij = softmax_j(e_ij)
        alpha = _masked_softmax(e, mask)  # (B, T_q, T_k)
        # c_i = sum_j alpha_ij h_j
        context = alpha @ values  # (B, T_q, d_v)
        return (context.squeeze(1), alpha.squeeze(1)) if single else (context, alpha)


class DotProductAttention(torch.nn.Module):
    """Luong attention: e_j = s^T h_j ("dot") or s^T W h_j ("general"), optionally / sqrt(d).

    Args:
        query_size, key_size: sizes of s and h_j ("dot" needs them equal).
        score: "dot" or "general".
        scaled: divide the scores by sqrt(d_k) (Vaswani et al.'s scaling).

    `forward(query, keys, values=None, mask=None)`: shapes as in `AdditiveAttention`; returns
    (context, weights).
    """

    def __init__(self, query_size: int, key_size: int | None = None, score: str = "dot", scaled: bool = False):
        super().__init__()
        key_size = query_size if key_size is None else key_size
        for name, v in (("query_size", query_size), ("key_size", key_size)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if score not in ("dot", "general"):
            raise ValueError(f"score must be 'dot' or 'general', got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(
                f"score='dot' needs query_size == key_size, got {query_size} and {key_size}; "
                "use score='general' to learn a map between them"
            )
        self.query_size, self.key_size, self.score, self.scaled = query_size, key_size, score, scaled
        if score == "general":
            self.weight = torch.nn.Parameter(torch.empty(query_size, key_size))
            bound = 1.0 / math.sqrt(key_size)
            torch.nn.init.uniform_(self.weight, -bound, bound)
        else:
            self.register_parameter("weight", None)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, score={self.score!r}, scaled={self.scaled}"

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ):
        q, single = _as_3d(query)
        if q.shape[-1] != self.query_size:
            raise ValueError(f"query's last dimension must be query_size={self.query_size}, got {q.shape[-1]}")
        if keys.dim() != 3 or keys.shape[-1] != self.key_size:
            raise ValueError(f"keys must be (B, T_k, {self.key_size}), got shape {tuple(keys.shape)}")
        values = keys if values is None else values
        # "general": s^T W h_j = (W^T s)^T h_j, so map the query once: (B, T_q, d_q) -> (B, T_q, d_k)
        if self.weight is not None:
            q = q @ self.weight
        # e_ij = s_i^T h_j  (/ sqrt(d_k) when scaled): (B, T_q, d_k) x (B, d_k, T_k) -> (B, T_q, T_k)
        e = q @ keys.transpose(1, 2)
        if self.scaled:
            e = e / math.sqrt(self.key_size)
        alpha = _masked_softmax(e, mask)  # (B, T_q, T_k)
        context = alpha @ values  # (B, T_q, d_v)
        return (context.squeeze(1), alpha.squeeze(1)) if single else (context, alpha)
