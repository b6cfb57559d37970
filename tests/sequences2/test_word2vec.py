"""Skip-gram with negative sampling: the loss by hand, pair generation, subsampling, and learning."""

import numpy as np
import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.methods.word2vec import SkipGramNS, build_vocab, skipgram_pairs, subsample


def test_loss_equals_formula():
    g = torch.Generator().manual_seed(0)
    m = SkipGramNS(6, 4, torch.ones(6), negatives=3, generator=g, sparse=False)
    with torch.no_grad():
        m.u.weight.normal_(generator=torch.Generator().manual_seed(1))
    centre, context = torch.tensor([1, 2]), torch.tensor([3, 4])
    m.generator = torch.Generator().manual_seed(0)  # so we can draw the same noise words below
    loss = m(centre, context)
    noise = torch.multinomial(m.noise, 6, replacement=True, generator=torch.Generator().manual_seed(0)).view(2, 3)
    v, u = m.v.weight, m.u.weight
    for b in range(2):
        expect = -torch.log(torch.sigmoid(u[context[b]] @ v[centre[b]]))
        expect -= torch.log(torch.sigmoid(-(u[noise[b]] @ v[centre[b]]))).sum()
        assert_close_f32(loss[b], expect, n=4 + 4 * 2 + 3)  # float32 rule: 4-d dot products, log-sigmoid, 3 noise


def test_pairs_and_subsampling():
    ids = np.arange(5)
    c, x = skipgram_pairs(ids, window=1, rng=np.random.default_rng(0))
    expected = [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3)]
    assert sorted(zip(c.tolist(), x.tolist())) == sorted(expected)
    c, x = skipgram_pairs(np.arange(50), window=3, rng=np.random.default_rng(0))
    assert (np.abs(c - x) <= 3).all() and (c != x).all()
    counts = np.array([1000, 10])
    kept = subsample(np.array([0] * 1000 + [1] * 10), counts, t=1e-2, rng=np.random.default_rng(0))
    assert (kept == 1).sum() == 10 and (kept == 0).sum() < 150  # keep rates 1 and ~0.1
    v = build_vocab(["b", "a", "a", "c"], min_count=1)
    assert v.itos == ["a", "b", "c"]


def test_training_pulls_cooccurring_words_together():
    # words 0-4 only co-occur with each other, 5-9 likewise
    rng = np.random.default_rng(0)
    seq = np.concatenate([rng.integers(0, 5, 30) if i % 2 == 0 else rng.integers(5, 10, 30) for i in range(200)])
    c, x = skipgram_pairs(seq, 2, rng)
    g = torch.Generator().manual_seed(0)
    m = SkipGramNS(10, 8, torch.ones(10), negatives=3, generator=g)
    opt = torch.optim.SparseAdam(list(m.parameters()), lr=0.05)
    c, x = torch.from_numpy(c), torch.from_numpy(x)
    for i in range(0, len(c), 256):
        opt.zero_grad()
        m(c[i : i + 256], x[i : i + 256]).mean().backward()
        opt.step()
    assert all((i < 5) == (j < 5) for i in range(10) for j, _ in m.most_similar(i, 2))


def test_bad_arguments():
    with pytest.raises(ValueError, match="negatives"):
        SkipGramNS(3, 2, torch.ones(3), negatives=0)
    with pytest.raises(ValueError, match="window"):
        skipgram_pairs(np.arange(3), 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="min_count"):
        build_vocab(["a"], min_count=2)
