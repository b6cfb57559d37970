r"""Prototypical networks with episodic sampling (few-shot and one-shot classification).

Snell, Swersky & Zemel, "Prototypical Networks for Few-shot Learning", NeurIPS 2017. An episode is
an $N$-way $K$-shot task: a support set $S_k$ of $K$ examples for each of $N$ classes and a query set.
An embedding $f_\phi$ maps inputs to vectors; each class is represented by the mean of its support
embeddings (its prototype), and a query is classified by a softmax over negative squared distances:

$$c_k = \frac{1}{|S_k|}\sum_{(x_i, y_i) \in S_k} f_\phi(x_i)$$

$$d_k(x) = \lVert f_\phi(x) - c_k\rVert^2, \qquad
  p_\phi(y = k \mid x) = \frac{\exp(-d_k(x))}{\sum_{k'} \exp(-d_{k'}(x))}$$

Training minimises $-\log p_\phi(y \mid x)$ over the queries of episodes drawn from the *base*
classes, so the embedding is trained for the very task it is tested on: classifying new classes
from a handful of examples. At test time $f_\phi$ is fixed and episodes come from classes never
seen in training. With $K = 1$ the prototype is the single example (one-shot learning).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "Episode",
    "EpisodeSampler",
    "prototypes",
    "prototypical_logits",
    "episode_logits",
    "train_episodic",
    "evaluate_episodes",
    "SideInfoPrototypes",
    "zero_shot_predict",
]


@dataclass
class Episode:
    """Support and query sets with labels renumbered 0..N-1 (the order of `classes`)."""

    support_x: torch.Tensor  # (N*K, ...)
    support_y: torch.Tensor  # (N*K,)
    query_x: torch.Tensor  # (N*Q, ...)
    query_y: torch.Tensor  # (N*Q,)
    classes: torch.Tensor  # (N,) original class ids


class EpisodeSampler:
    """Draws N-way K-shot episodes (with Q queries per class) from (x, y), classes restricted to `classes`.

    Args:
        x, y: the pool of examples and their integer labels.
        n_way: N, classes per episode.
        k_shot: K, support examples per class.
        n_query: Q, query examples per class.
        classes: class ids allowed (default: every class in y).
        generator: torch generator for reproducible episodes.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        n_way: int,
        k_shot: int,
        n_query: int,
        classes=None,
        generator: torch.Generator | None = None,
    ):
        for name, v in (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.classes = torch.as_tensor(classes) if classes is not None else y.unique()
        if n_way > len(self.classes):
            raise ValueError(f"n_way={n_way} exceeds the {len(self.classes)} classes available")
        self.index = {int(c): torch.nonzero(y == c).flatten() for c in self.classes}
        short = [c for c, idx in self.index.items() if len(idx) < k_shot + n_query]
        if short:
            raise ValueError(f"classes {short} have fewer than k_shot + n_query = {k_shot + n_query} examples")
        self.x, self.n_way, self.k_shot, self.n_query = x, n_way, k_shot, n_query
        self.generator = generator

    def sample(self) -> Episode:
        g = self.generator
        chosen = self.classes[torch.randperm(len(self.classes), generator=g)[: self.n_way]]
        sx, sy, qx, qy = [], [], [], []
        for k, c in enumerate(chosen.tolist()):
            idx = self.index[c]
            pick = idx[torch.randperm(len(idx), generator=g)[: self.k_shot + self.n_query].to(idx.device)]
            sx.append(self.x[pick[: self.k_shot]])
            qx.append(self.x[pick[self.k_shot :]])
            sy.append(torch.full((self.k_shot,), k, dtype=torch.int64))
            qy.append(torch.full((self.n_query,), k, dtype=torch.int64))
        dev = self.x.device
        return Episode(torch.cat(sx), torch.cat(sy).to(dev), torch.cat(qx), torch.cat(qy).to(dev), chosen)


def prototypes(support_emb: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
    """c_k = mean of the support embeddings of class k; (N, D)."""
    counts = torch.bincount(support_y, minlength=n_way)
    if len(counts) != n_way or torch.any(counts == 0):
        raise ValueError(f"support_y must contain every class 0..{n_way - 1}, got counts {counts.tolist()}")
    sums = torch.zeros(n_way, support_emb.size(1), device=support_emb.device, dtype=support_emb.dtype)
    sums.index_add_(0, support_y, support_emb)
    return sums / counts[:, None].to(support_emb.dtype)


def prototypical_logits(query_emb: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """-||f(x) - c_k||^2 for every query and prototype; (Q, N)."""
    # ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2
    d2 = query_emb.pow(2).sum(1, keepdim=True) - 2 * query_emb @ protos.t() + protos.pow(2).sum(1)[None, :]  # (Q, N)
    return -d2.clamp_min(0)


def episode_logits(encoder: nn.Module, ep: Episode) -> torch.Tensor:
    """Query logits of one episode under `encoder`; (N*Q, N)."""
    n_way = int(ep.support_y.max()) + 1
    emb = encoder(torch.cat([ep.support_x, ep.query_x]))  # (N*K + N*Q, D), one pass
    s, q = emb[: len(ep.support_x)], emb[len(ep.support_x) :]
    return prototypical_logits(q, prototypes(s, ep.support_y, n_way))


def train_episodic(
    encoder: nn.Module, sampler: EpisodeSampler, episodes: int, optimizer: torch.optim.Optimizer, on_episode=None
) -> list[float]:
    """Minimise the query cross-entropy over `episodes` sampled episodes; returns the losses."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    encoder.train()
    losses = []
    for i in range(episodes):
        ep = sampler.sample()
        loss = nn.functional.cross_entropy(episode_logits(encoder, ep), ep.query_y)  # -log p(y | x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if on_episode is not None:
            on_episode(i, losses[-1])
    return losses


@torch.no_grad()
def evaluate_episodes(encoder: nn.Module, sampler: EpisodeSampler, episodes: int) -> torch.Tensor:
    """Query accuracy of each of `episodes` episodes, encoder in eval mode; (episodes,)."""
    was = encoder.training
    encoder.eval()
    accs = []
    for _ in range(episodes):
        ep = sampler.sample()
        accs.append((episode_logits(encoder, ep).argmax(1) == ep.query_y).float().mean())
    encoder.train(was)
    return torch.stack(accs)


class SideInfoPrototypes(nn.Module):
    r"""Zero-shot prototypes from class side information (Snell et al. 2017, section 2.4).

    With no examples of a class, its prototype is computed from a description vector $v_k$ of the
    class (attributes, or a text embedding): $c_k = g_\theta(v_k)$. Inputs are embedded by
    $f_\phi$ and scored as before, $\mathrm{logit}_k(x) = -\lVert f_\phi(x) - c_k\rVert^2$.
    Trained on the seen classes' descriptions, it classifies unseen classes by swapping in theirs.

    Args:
        encoder: f_phi, inputs -> (B, D).
        side_encoder: g_theta, descriptions (K, A) -> (K, D).
    """

    def __init__(self, encoder: nn.Module, side_encoder: nn.Module):
        super().__init__()
        self.encoder, self.side_encoder = encoder, side_encoder

    def forward(self, x: torch.Tensor, class_info: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) over the K classes described by `class_info` (K, A)."""
        if class_info.dim() != 2:
            raise ValueError(f"class_info must be (K, A) with one description per class, got {tuple(class_info.shape)}")
        return prototypical_logits(self.encoder(x), self.side_encoder(class_info))


def zero_shot_predict(input_emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    r"""Zero-shot classification in a shared embedding space: $\hat y = \arg\max_k \cos(f(x), g(c_k))$.

    `input_emb` (B, D) embeds the inputs, `class_emb` (K, D) the class descriptions, by encoders that
    never saw these classes' labels (e.g. a pretrained sentence encoder for both). Returns (B,) class
    indices. With unit-length embeddings this is the nearest prototype, the prototypes coming from the
    side information alone.
    """
    if input_emb.dim() != 2 or class_emb.dim() != 2 or input_emb.size(1) != class_emb.size(1):
        raise ValueError(
            f"need (B, D) inputs and (K, D) class embeddings, got {tuple(input_emb.shape)} and {tuple(class_emb.shape)}"
        )
    a = input_emb / input_emb.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = class_emb / class_emb.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (a @ b.t()).argmax(dim=1)  # (B,)
