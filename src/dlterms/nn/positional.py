r"""Positional encodings: how a transformer learns the order of its tokens.

Self-attention is permutation-equivariant: permuting the input rows permutes the output rows the
same way, so without extra information a transformer cannot tell "a b" from "b a". A positional
encoding $P \in \mathbb{R}^{T_{max} \times d}$ is added to the token embeddings, $x_t \leftarrow x_t + P_t$.

Sinusoidal (Vaswani et al., 2017, section 3.5), fixed:

$$P_{p, 2i} = \sin\!\big(p / 10000^{2i/d}\big), \qquad P_{p, 2i+1} = \cos\!\big(p / 10000^{2i/d}\big)$$

Each pair of columns is a rotation at angular frequency $\omega_i = 10000^{-2i/d}$, so $P_{p+k}$ is a
fixed linear map (a rotation per pair) of $P_p$ for any offset $k$, and the wavelengths run
geometrically from $2\pi$ to $10000 \cdot 2\pi$.

Learned (BERT, GPT-2): $P$ is a trainable table with one row per position, initialised small,
which cannot represent positions past $T_{max}$.

Batch first: input (B, T, d) -> output (B, T, d).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlterms.nn.dropout import Dropout
from dlterms.nn.embedding import Embedding

__all__ = ["sinusoidal_encoding", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding"]


def sinusoidal_encoding(max_len: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The (max_len, d_model) matrix P of the sinusoidal encoding; d_model must be even."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if d_model < 2 or d_model % 2:
        raise ValueError(f"d_model must be a positive even number (sin/cos pairs), got {d_model}")
    if base <= 1:
        raise ValueError(f"base must be > 1, got {base}")
    p = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (T, 1) positions
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,) the even column indices 2i
    omega = torch.exp(-math.log(base) * two_i / d_model)  # omega_i = base^(-2i/d)
    P = torch.zeros(max_len, d_model, dtype=torch.float64)
    P[:, 0::2] = torch.sin(p * omega)  # P_{p,2i}
    P[:, 1::2] = torch.cos(p * omega)  # P_{p,2i+1}
    return P.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encoding to (B, T, d_model) inputs (T <= max_len), then dropout."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, base: float = 10000.0):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model, base), persistent=False)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, T, {self.d_model}), got {tuple(x.shape)}")
        T = x.shape[1]
        if T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.max_len}")
        return self.dropout(x + self.pe[:T])  # (B, T, d) + (T, d)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEncoding(nn.Module):
    """Adds a trainable row per position (initialised N(0, init_std^2), as BERT's 0.02) to (B, T, d_model)."""

    def __init__(self, max_len: int, d_model: int, dropout: float = 0.0, init_std: float = 0.02):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.max_len, self.d_model = max_len, d_model
        self.embedding = Embedding(max_len, d_model)
        with torch.no_grad():
            self.embedding.weight.normal_(0.0, init_std)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, T, {self.d_model}), got {tuple(x.shape)}")
        T = x.shape[1]
        if T > self.max_len:
            raise ValueError(
                f"sequence length {T} exceeds max_len={self.max_len}: a learned encoding has no row for later positions"
            )
        pos = torch.arange(T, device=x.device)
        return self.dropout(x + self.embedding(pos))  # (B, T, d) + (T, d)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"
