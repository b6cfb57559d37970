r"""Word2vec: skip-gram with negative sampling (Mikolov et al., 2013, "Distributed Representations of
Words and Phrases and their Compositionality").

Each word $w$ has an input vector $v_w$ (the word embedding) and an output vector $u_w$. For every
pair of a centre word $w$ and a word $c$ within a window around it, and $k$ noise words
$n_1, \dots, n_k$ drawn from the unigram distribution raised to the power 3/4, the loss is

$$\ell(w, c) = -\log\sigma(u_c^\top v_w) - \sum_{i=1}^{k}\log\sigma(-u_{n_i}^\top v_w)$$

so true pairs are pushed to high scores and noise pairs to low ones; words that share contexts end up
with similar $v$. Two tricks from the paper: the window size is drawn uniformly from 1..window for each
centre (nearer words count more), and frequent words are dropped at random with probability
$1 - \sqrt{t / f(w)}$ (subsampling, $f$ the word's relative frequency).

Shapes: centre and context ids (B,); noise ids (B, k); vectors (B, d).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlterms.nn.embedding import Embedding

__all__ = ["Vocab", "build_vocab", "subsample", "skipgram_pairs", "SkipGramNS"]


class Vocab:
    """Words sorted by frequency (ties alphabetically), with their counts."""

    def __init__(self, words: Sequence[str], counts: Sequence[int]):
        self.itos = list(words)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words: Sequence[str]) -> np.ndarray:
        """Ids of the words in the vocabulary (unknown words are dropped)."""
        return np.array([self.stoi[w] for w in words if w in self.stoi], dtype=np.int64)


def build_vocab(words: Sequence[str], min_count: int = 5) -> Vocab:
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    items = sorted(((w, c) for w, c in Counter(words).items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    if not items:
        raise ValueError(f"no word occurs min_count={min_count} times")
    return Vocab([w for w, _ in items], [c for _, c in items])


def subsample(ids: np.ndarray, counts: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """Keep each occurrence of word w with probability min(1, sqrt(t / f(w)))."""
    if not t > 0:
        raise ValueError(f"t must be > 0, got {t}")
    f = counts / counts.sum()
    keep = np.minimum(1.0, np.sqrt(t / f))  # (V,)
    return ids[rng.random(len(ids)) < keep[ids]]


def skipgram_pairs(ids: np.ndarray, window: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(centre, context) pairs: for each position a window b ~ U{1..window}, contexts at offsets 1..b each side."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    n = len(ids)
    b = rng.integers(1, window + 1, size=n)  # per-centre window
    centres, contexts = [], []
    for off in range(1, window + 1):
        pos = np.arange(n)
        ok = b >= off
        for shift in (-off, off):
            j = pos + shift
            m = ok & (j >= 0) & (j < n)
            centres.append(ids[pos[m]])
            contexts.append(ids[j[m]])
    return np.concatenate(centres), np.concatenate(contexts)


class SkipGramNS(nn.Module):
    """Input vectors v (the embeddings) and output vectors u; `forward(centre, context)` returns the
    loss of each pair, with `negatives` noise words drawn from `noise` (unnormalised weights, (V,))."""

    def __init__(
        self,
        num_words: int,
        dim: int,
        noise: torch.Tensor,
        negatives: int = 5,
        generator: torch.Generator | None = None,
        sparse: bool = True,
    ):
        super().__init__()
        if negatives < 1:
            raise ValueError(f"negatives must be >= 1, got {negatives}")
        if noise.shape != (num_words,) or (noise < 0).any() or noise.sum() <= 0:
            raise ValueError(f"noise must be non-negative weights of shape ({num_words},)")
        self.v = Embedding(num_words, dim, sparse=sparse)  # input vectors: the word embeddings
        self.u = Embedding(num_words, dim, sparse=sparse)  # output (context) vectors
        with torch.no_grad():  # word2vec's initialisation: v uniform in +-0.5/d, u zero
            self.v.weight.uniform_(-0.5 / dim, 0.5 / dim, generator=generator)
            self.u.weight.zero_()
        self.register_buffer("noise", noise.double() / noise.sum())
        self.negatives, self.generator = negatives, generator

    @staticmethod
    def unigram_noise(counts, power: float = 0.75) -> torch.Tensor:
        return torch.as_tensor(np.asarray(counts, dtype=np.float64)) ** power

    def forward(self, centre: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B = centre.shape[0]
        vw = self.v(centre)  # (B, d)
        uc = self.u(context)  # (B, d)
        noise_ids = (
            torch.multinomial(self.noise.cpu(), B * self.negatives, replacement=True, generator=self.generator)
            .view(B, self.negatives)
            .to(centre.device)
        )
        un = self.u(noise_ids)  # (B, k, d)
        pos = F.logsigmoid((uc * vw).sum(-1))  # log sigma(u_c . v_w): (B,)
        neg = F.logsigmoid(-(un @ vw.unsqueeze(-1)).squeeze(-1)).sum(-1)  # sum_i log sigma(-u_n . v_w): (B,)
        return -(pos + neg)  # (B,) per-pair loss

    @torch.no_grad()
    def most_similar(self, word_id: int, k: int = 5) -> list[tuple[int, float]]:
        """The k words whose input vectors have the highest cosine similarity with `word_id`'s."""
        w = F.normalize(self.v.weight, dim=1)
        sim = w @ w[word_id]
        sim[word_id] = -2.0
        top = sim.topk(k)
        return [(int(i), float(s)) for s, i in zip(top.values, top.indices)]
