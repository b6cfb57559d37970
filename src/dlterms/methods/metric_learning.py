r"""Losses that learn an embedding by distances: contrastive, triplet (with batch-hard mining), NT-Xent.

Embeddings are (batch, dim), batch first. Naming: `*_loss` lower is better.

**Contrastive loss** (Hadsell, Chopra & LeCun, 2006) on pairs with $y = 1$ for "same" and $y = 0$ for
"different", $d = \lVert f(x_1) - f(x_2) \rVert_2$:

$$L = y\, d^2 + (1 - y) \max(0,\ m - d)^2 .$$

Over a labelled batch, every pair $i < j$ is a training pair (`pairwise_contrastive_loss`): one pass of
the shared encoder embeds the $B$ inputs and yields $B(B-1)/2$ pairs. Random batches have few same-class
pairs, so by default the mean over same pairs $P$ and the mean over different pairs $N$ are weighted
equally, as a sampler of half same and half different pairs would:

$$L = \tfrac12 \operatorname{mean}_{(i,j) \in P} d_{ij}^2
    + \tfrac12 \operatorname{mean}_{(i,j) \in N} \max(0,\ m - d_{ij})^2 .$$

**Triplet margin loss** (Schroff et al., 2015, FaceNet; torch's `TripletMarginLoss`) on an anchor $a$,
positive $p$ and negative $n$, with $d(u, v) = \lVert u - v + \epsilon \rVert_p$ (torch adds $\epsilon$ to
the difference) and, with `swap` (Balntas et al., 2016), the negative's distance taken to whichever of
anchor and positive is closer:

$$L = \max\big(0,\ d(a, p) - d(a, n) + m\big),$$

$$d(a, n) \leftarrow \min\big(d(a, n), d(p, n)\big) \text{ if swap}.$$

**Batch-hard mining** (Hermans, Beyer & Leibe, 2017, "In defense of the triplet loss"): for every
anchor $i$ in a labelled batch, the hardest positive and the hardest negative,

$$L = \frac1B \sum_i \max\Big(0,\ m + \max_{j \ne i:\, y_j = y_i} d_{ij} - \min_{k:\, y_k \ne y_i} d_{ik}\Big).$$

Batches for these losses are often drawn *P x K* (Hermans et al., 2017): $P$ classes at random, then $K$
examples of each (`pk_batch_indices`), so that every batch holds $P\binom{K}{2}$ same-class pairs and
every anchor has positives; a random batch from many classes has almost none.

**NT-Xent** (Chen et al., 2020, SimCLR): for $2N$ embeddings where rows $i$ and $i + N$ are two
augmented views of one example, with cosine similarity $s_{ij}$ and temperature $\tau$,

$$\ell_{i} = -\log \frac{\exp(s_{i,\,j(i)}/\tau)}{\sum_{k \ne i} \exp(s_{ik}/\tau)},
\qquad L = \frac{1}{2N}\sum_i \ell_i ,$$

where $j(i)$ is $i$'s other view: a softmax cross-entropy whose "class" is the other view.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "pairwise_distance",
    "contrastive_loss",
    "pairwise_contrastive_loss",
    "triplet_margin_loss",
    "batch_hard_triplet_loss",
    "pk_batch_indices",
    "nt_xent_loss",
    "TripletMarginLoss",
    "SimCLR",
]


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(x: Tensor, reduction: str) -> Tensor:
    return x.mean() if reduction == "mean" else x.sum() if reduction == "sum" else x


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6) -> Tensor:
    """||x1 - x2 + eps||_p over the last dimension (torch's `pairwise_distance`), (B, D) -> (B,)."""
    if not p > 0:
        raise ValueError(f"p must be > 0, got {p}")
    return (x1 - x2 + eps).abs().pow(p).sum(dim=-1).pow(1.0 / p)


def contrastive_loss(x1: Tensor, x2: Tensor, same: Tensor, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """y d^2 + (1 - y) max(0, m - d)^2 for pairs (x1, x2) with same = y in {0, 1}, each (B, D), (B,)."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    _check_reduction(reduction)
    y = same.to(x1.dtype)
    d = pairwise_distance(x1, x2, 2.0, eps=0.0)  # Euclidean distance, (B,)
    loss = y * d.pow(2) + (1 - y) * torch.clamp(margin - d, min=0).pow(2)
    return _reduce(loss, reduction)


def pairwise_contrastive_loss(embeddings: Tensor, labels: Tensor, margin: float = 1.0, balanced: bool = True) -> Tensor:
    """The contrastive loss over all B(B-1)/2 pairs of a batch of embeddings (B, D) with labels (B,).

    With `balanced`, the same-class and the different-class pairs each weigh one half (the batch must
    hold at least one pair of each); otherwise every pair weighs the same, which equals
    `contrastive_loss` on the explicit list of pairs.
    """
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"need embeddings (B, D) and labels (B,), got {tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=embeddings.device)  # every pair i < j
    d = _distance_matrix(embeddings)[i, j]  # (B(B-1)/2,)
    same = labels[i] == labels[j]
    pos, neg = d.pow(2), torch.clamp(margin - d, min=0).pow(2)
    if not balanced:
        return torch.where(same, pos, neg).mean()
    if not bool(same.any()) or bool(same.all()):
        raise ValueError(
            "balanced pairwise_contrastive_loss needs a batch with at least one same-class and one "
            "different-class pair; use larger batches or balanced=False"
        )
    return 0.5 * pos[same].mean() + 0.5 * neg[~same].mean()


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(0, d(a, p) - d(a, n) + margin), as torch.nn.functional.triplet_margin_loss."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    _check_reduction(reduction)
    if not (anchor.shape == positive.shape == negative.shape):
        raise ValueError(
            f"anchor, positive and negative must have the same shape, got {tuple(anchor.shape)}, "
            f"{tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:  # use the positive as anchor when it is closer to the negative
        d_an = torch.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return _reduce(torch.clamp(d_ap - d_an + margin, min=0), reduction)


class TripletMarginLoss(torch.nn.Module):
    """Module form of `triplet_margin_loss`, with torch.nn.TripletMarginLoss's arguments."""

    def __init__(
        self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False, reduction: str = "mean"
    ):
        super().__init__()
        if not margin > 0:
            raise ValueError(f"margin must be > 0, got {margin}")
        if not p > 0:
            raise ValueError(f"p must be > 0, got {p}")
        _check_reduction(reduction)
        self.margin, self.p, self.eps, self.swap, self.reduction = margin, p, eps, swap, reduction

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps, self.swap, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, p={self.p}, eps={self.eps}, swap={self.swap}, reduction={self.reduction!r}"


def _distance_matrix(x: Tensor) -> Tensor:
    """Euclidean distances between all rows, (B, D) -> (B, B), with a safe gradient at 0."""
    sq = (x * x).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2 * x @ x.T).clamp_min(0)  # (B, B)
    return torch.sqrt(d2 + 1e-12)


def batch_hard_triplet_loss(embeddings: Tensor, labels: Tensor, margin: float = 1.0, reduction: str = "mean") -> Tensor:
    """Hardest positive and hardest negative for every anchor in the batch (anchors with no positive or
    no negative in the batch are skipped)."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    _check_reduction(reduction)
    B = embeddings.shape[0]
    D = _distance_matrix(embeddings)  # d_ij, (B, B)
    same = labels[:, None] == labels[None, :]  # (B, B)
    eye = torch.eye(B, dtype=torch.bool, device=embeddings.device)
    pos_mask, neg_mask = same & ~eye, ~same
    hardest_pos = torch.where(pos_mask, D, torch.full_like(D, -float("inf"))).max(dim=1).values  # max_j d_ij
    hardest_neg = torch.where(neg_mask, D, torch.full_like(D, float("inf"))).min(dim=1).values  # min_k d_ik
    valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
    if not bool(valid.any()):
        raise ValueError(
            "batch_hard_triplet_loss needs a batch with at least two examples of one class "
            "and one of another; sample batches with several examples per class"
        )
    loss = torch.clamp(margin + hardest_pos - hardest_neg, min=0)[valid]
    return _reduce(loss, reduction)


def pk_batch_indices(
    labels: Tensor, p: int, k: int, n_batches: int, generator: torch.Generator | None = None
) -> Tensor:
    """Indices of `n_batches` batches of P x K examples, concatenated: (n_batches * p * k,).

    Each batch takes `p` distinct classes at random and `k` distinct examples of each (classes and
    examples drawn without replacement within the batch), in class-major order. Train with
    `fit(model, (x[idx], y[idx]), batch_size=p * k, shuffle=False, ...)`.
    """
    for name, v in (("p", p), ("k", k), ("n_batches", n_batches)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    labels = labels.cpu()
    classes, counts = labels.unique(return_counts=True)
    eligible = classes[counts >= k]
    if len(eligible) < p:
        raise ValueError(f"p={p} classes with at least k={k} examples are needed, the labels have {len(eligible)}")
    members = [torch.nonzero(labels == c).flatten() for c in eligible.tolist()]
    out = []
    for _ in range(n_batches):
        for c in torch.randperm(len(eligible), generator=generator)[:p].tolist():
            m = members[c]
            out.append(m[torch.randperm(len(m), generator=generator)[:k]])
    return torch.cat(out)


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent of two views z1, z2 (N, D) of the same N examples (row i of z1 pairs with row i of z2)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    N = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)  # (2N, D)
    z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)  # unit vectors: dot product = cosine similarity
    logits = z @ z.T / temperature  # s_ij / tau, (2N, 2N)
    eye = torch.eye(2 * N, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, -float("inf"))  # k != i in the denominator
    target = torch.cat([torch.arange(N, 2 * N), torch.arange(0, N)]).to(z.device)  # j(i): the other view
    # -log softmax at the other view, averaged over the 2N rows
    return -(logits.log_softmax(dim=1).gather(1, target[:, None])).mean()


class SimCLR(torch.nn.Module):
    r"""Contrastive self-supervision (Chen et al., 2020): two random views of each input, an encoder
    $h = f(x)$, a projection head $z = g(h)$, and the NT-Xent loss between the two views' $z$.

    forward(x) -> (z1, z2), the projections of two independently augmented views (B, P) each, so
    `fit(model, x, loss_fn=lambda out, _: nt_xent_loss(*out, temperature), ...)` trains it without
    labels. `features(x)` returns $h$, the representation used downstream (the head is discarded).

    Args:
        encoder: f, mapping (B, ...) -> (B, feature_dim).
        feature_dim: size of h.
        projection_dim: size of z; the head is Linear-ReLU-Linear (SimCLR's).
        augment: a callable `augment(x, generator) -> view` (e.g. `dlterms.data.augment.Compose`).
        generator: torch.Generator for the augmentations.
    """

    def __init__(
        self,
        encoder: torch.nn.Module,
        feature_dim: int,
        projection_dim: int = 32,
        augment=None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if augment is None or not callable(augment):
            raise ValueError(f"augment must be a callable augment(x, generator) -> view, got {augment!r}")
        from dlterms.nn.linear import MLP

        self.encoder = encoder
        self.head = MLP([feature_dim, feature_dim, projection_dim])  # g
        self.augment, self.generator = augment, generator

    def features(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        v1, v2 = self.augment(x, self.generator), self.augment(x, self.generator)  # two views of each input
        return self.head(self.encoder(v1)), self.head(self.encoder(v2))
