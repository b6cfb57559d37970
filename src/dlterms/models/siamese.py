r"""Siamese network: one encoder, one set of weights, applied to both inputs of a pair.

Bromley et al. (1993), "Signature verification using a 'Siamese' time delay neural network";
Chopra, Hadsell & LeCun (2005). For a pair $(x_1, x_2)$ the same encoder $f_W$ embeds both inputs
and the pair is compared by the distance

$$d(x_1, x_2) = \lVert f_W(x_1) - f_W(x_2) \rVert_2 ,$$

which is symmetric, and zero for identical inputs, because the weights $W$ are shared (there is one
module, not two copies). Trained with the contrastive loss
(`dlterms.methods.metric_learning.contrastive_loss`), small $d$ means "same"; verification thresholds
$d$, so it works for classes never seen in training. Inputs are (batch, features).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dlterms.nn.linear import MLP

__all__ = ["SiameseNetwork", "make_pairs"]


class SiameseNetwork(torch.nn.Module):
    """forward(x1, x2) -> (f(x1), f(x2)) with a single encoder f (an MLP unless one is given).

    Args:
        in_features: input size (when `encoder` is None).
        embedding_dim: output size of f.
        hidden: hidden widths of the MLP encoder.
        encoder: any module mapping (B, ...) -> (B, embedding_dim), used instead of the MLP.
        normalize: scale embeddings to unit L2 norm (fixes the scale the margin is measured in).
    """

    def __init__(
        self,
        in_features: int | None = None,
        embedding_dim: int = 32,
        hidden: Sequence[int] = (128,),
        encoder: torch.nn.Module | None = None,
        normalize: bool = False,
    ):
        super().__init__()
        if encoder is None:
            if not isinstance(in_features, int) or in_features < 1:
                raise ValueError(
                    f"in_features must be a positive integer when no encoder is given, got {in_features!r}"
                )
            encoder = MLP([in_features, *hidden, embedding_dim])
        self.encoder = encoder  # f_W: the one set of weights both branches use
        self.normalize = normalize

    def embed(self, x: Tensor) -> Tensor:
        e = self.encoder(x)  # (B, E)
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-12) if self.normalize else e

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        return self.embed(x1), self.embed(x2)

    def distance(self, x1: Tensor, x2: Tensor) -> Tensor:
        """d(x1, x2) = ||f(x1) - f(x2)||_2, (B,)."""
        e1, e2 = self(x1, x2)
        return (e1 - e2).norm(dim=1)

    def extra_repr(self) -> str:
        return f"normalize={self.normalize}"


def make_pairs(y: Tensor, n_pairs: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Index pairs (i, j) and same = [y_i == y_j], half same-class and half different-class, (n_pairs,) each."""
    if n_pairs < 2:
        raise ValueError(f"n_pairs must be >= 2, got {n_pairs}")
    n = len(y)
    i = torch.randint(n, (n_pairs,), generator=generator)
    same_wanted = torch.arange(n_pairs) % 2 == 0
    j = torch.empty_like(i)
    for t in range(n_pairs):
        cand = (y == y[i[t]]) if same_wanted[t] else (y != y[i[t]])
        cand[i[t]] = False if same_wanted[t] else cand[i[t]]
        idx = cand.nonzero().squeeze(1)
        if len(idx) == 0:
            raise ValueError("every class needs at least two examples, and there must be two classes")
        j[t] = idx[torch.randint(len(idx), (1,), generator=generator)]
    return i, j, (y[i] == y[j]).long()
