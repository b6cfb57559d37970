r"""Embedding layer: a trainable lookup table from integer indices to dense vectors.

An embedding table $E \in \mathbb{R}^{V \times d}$ maps index $i \in \{0, \dots, V-1\}$ to its row:

$$\mathrm{Embedding}(i) = E_{i,:} = \mathrm{onehot}(i)^\top E$$

The lookup and the one-hot product give the same vector; the lookup costs $O(d)$ instead of $O(Vd)$.
Its gradient follows from the one-hot form: for a batch of indices $i_1, \dots, i_n$ with upstream
gradients $g_1, \dots, g_n$,

$$\frac{\partial L}{\partial E_{r,:}} = \sum_{k:\, i_k = r} g_k$$

so only rows that occur in the batch receive gradient. With `sparse=True` the gradient is stored as
those rows only (a sparse COO tensor with one entry per looked-up index, duplicates summed when
coalesced), which is what makes huge vocabularies cheap to update. The row `padding_idx`, if given,
starts at zero and never receives gradient (Mikolov et al. 2013 popularised learned word vectors;
the layer itself is PyTorch's `torch.nn.Embedding`, whose interface this one follows).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Embedding", "embedding"]


class _EmbeddingLookup(torch.autograd.Function):
    """Row lookup with the hand-written backward above (dense or row-sparse)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, indices: torch.Tensor, padding_idx: int | None, sparse: bool):
        V, d = weight.shape
        flat = indices.reshape(-1)  # (n,)
        ctx.save_for_backward(flat)
        ctx.num_embeddings, ctx.padding_idx, ctx.sparse = V, padding_idx, sparse
        return weight.index_select(0, flat).reshape(*indices.shape, d)  # (*, d)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (flat,) = ctx.saved_tensors
        d = grad_out.shape[-1]
        g = grad_out.reshape(-1, d)  # (n, d): g_k for each looked-up index i_k
        if ctx.padding_idx is not None:
            keep = flat != ctx.padding_idx  # the padding row gets no gradient
            flat, g = flat[keep], g[keep]
        if ctx.sparse:
            # dL/dE as its non-zero rows only: one (i_k, g_k) entry per lookup, summed on coalesce
            grad_w = torch.sparse_coo_tensor(
                flat.unsqueeze(0), g, (ctx.num_embeddings, d), check_invariants=False
            )  # indices valid by construction
        else:
            # dL/dE_r = sum_{k: i_k = r} g_k
            grad_w = torch.zeros(ctx.num_embeddings, d, dtype=g.dtype, device=g.device).index_add_(0, flat, g)
        return grad_w, None, None, None


def _check_indices(indices: torch.Tensor, num_embeddings: int) -> None:
    if indices.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"indices must be an integer tensor (int64 or int32), got {indices.dtype}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= num_embeddings):
        raise ValueError(
            f"indices must be in [0, {num_embeddings}), got values in [{int(indices.min())}, {int(indices.max())}]"
        )


def embedding(
    indices: torch.Tensor, weight: torch.Tensor, padding_idx: int | None = None, sparse: bool = False
) -> torch.Tensor:
    """Rows of `weight` (V, d) at `indices` (any shape) -> (*indices.shape, d)."""
    _check_indices(indices, weight.shape[0])
    return _EmbeddingLookup.apply(weight, indices.long(), padding_idx, sparse)


class Embedding(nn.Module):
    """Lookup table of `num_embeddings` vectors of size `embedding_dim` (as `torch.nn.Embedding`).

    Args:
        num_embeddings: vocabulary size V.
        embedding_dim: vector size d.
        padding_idx: a row that starts at zero and never receives gradient (negative counts from the end).
        max_norm, norm_type, scale_grad_by_freq: torch's re-normalisation of looked-up rows and gradient
            scaling by word frequency; not supported (a ValueError unless left at their defaults).
        sparse: if True, `weight.grad` is a sparse tensor holding only the looked-up rows.
        _weight: optional initial table (V, d); `_freeze=True` makes it not require grad.
    Weights start ~ N(0, 1), as in torch. The arguments are torch's, in torch's order.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: torch.Tensor | None = None,
        _freeze: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        if max_norm is not None:
            raise ValueError(f"max_norm is not supported by dlterms.nn.Embedding, got max_norm={max_norm!r}")
        if scale_grad_by_freq:
            raise ValueError("scale_grad_by_freq=True is not supported by dlterms.nn.Embedding")
        if num_embeddings < 1:
            raise ValueError(f"num_embeddings must be >= 1, got {num_embeddings}")
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx must be in [-{num_embeddings}, {num_embeddings}), got {padding_idx}")
            padding_idx = padding_idx % num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx, self.sparse = padding_idx, sparse
        if _weight is None:
            self.weight = nn.Parameter(
                torch.empty(num_embeddings, embedding_dim, device=device, dtype=dtype), requires_grad=not _freeze
            )
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"_weight must have shape ({num_embeddings}, {embedding_dim}), got {tuple(_weight.shape)}"
                )
            self.weight = nn.Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0)
            if self.padding_idx is not None:
                self.weight[self.padding_idx].zero_()

    @classmethod
    def from_pretrained(
        cls, embeddings: torch.Tensor, freeze: bool = True, padding_idx: int | None = None, sparse: bool = False
    ) -> Embedding:
        """An Embedding holding `embeddings` (V, d); frozen unless `freeze=False`."""
        if embeddings.dim() != 2:
            raise ValueError(f"embeddings must be 2-D (V, d), got shape {tuple(embeddings.shape)}")
        emb = cls(*embeddings.shape, padding_idx=padding_idx, sparse=sparse, _weight=embeddings.clone())
        emb.weight.requires_grad_(not freeze)
        return emb

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return embedding(input, self.weight, self.padding_idx, self.sparse)  # (*input.shape, d)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.sparse:
            s += ", sparse=True"
        return s
