"""Prototypical networks: prototypes and distances against torch.cdist, episode sampling, training."""

from __future__ import annotations

import pytest
import torch

from _tolerance import assert_close_f32
from dlterms.methods.protonets import (
    EpisodeSampler,
    episode_logits,
    evaluate_episodes,
    prototypes,
    prototypical_logits,
    train_episodic,
)


def test_prototypes_and_logits_match_means_and_cdist():
    torch.manual_seed(0)
    emb, y = torch.randn(12, 5), torch.tensor([0, 1, 2] * 4)
    protos = prototypes(emb, y, 3)
    assert_close_f32(protos, torch.stack([emb[y == k].mean(0) for k in range(3)]), n=4 + 1)
    q = torch.randn(7, 5)
    assert_close_f32(prototypical_logits(q, protos), -(torch.cdist(q, protos) ** 2), n=2 * 5 + 4)


def test_sampler_shapes_relabels_and_keeps_support_and_query_disjoint():
    x = torch.arange(200.0)[:, None]
    y = torch.arange(200) % 10
    s = EpisodeSampler(
        x, y, n_way=4, k_shot=2, n_query=3, classes=range(5, 10), generator=torch.Generator().manual_seed(0)
    )
    ep = s.sample()
    assert ep.support_x.shape == (8, 1) and ep.query_x.shape == (12, 1)
    assert ep.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert set(ep.classes.tolist()) <= set(range(5, 10))
    for k, c in enumerate(ep.classes.tolist()):  # each renumbered label comes from its class
        assert torch.all(y[ep.support_x[ep.support_y == k, 0].long()] == c)
    assert not set(ep.support_x.flatten().tolist()) & set(ep.query_x.flatten().tolist())


def test_training_separates_gaussian_classes():
    torch.manual_seed(1)
    centres = torch.randn(8, 6) * 3
    y = torch.arange(400) % 8
    x = centres[y] + torch.randn(400, 6)
    enc = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    sampler = EpisodeSampler(x, y, 4, 3, 5, classes=range(6), generator=torch.Generator().manual_seed(0))
    losses = train_episodic(enc, sampler, 150, torch.optim.Adam(enc.parameters(), lr=1e-2))
    assert sum(losses[-20:]) < sum(losses[:20])
    novel = EpisodeSampler(x, y, 2, 1, 10, classes=[6, 7], generator=torch.Generator().manual_seed(1))
    assert float(evaluate_episodes(enc, novel, 20).mean()) > 0.8
    assert episode_logits(enc, novel.sample()).shape == (20, 2)


def test_errors():
    x, y = torch.zeros(20, 2), torch.arange(20) % 2
    with pytest.raises(ValueError, match="n_way"):
        EpisodeSampler(x, y, 3, 1, 1)
    with pytest.raises(ValueError, match="fewer than"):
        EpisodeSampler(x, y, 2, 5, 6)
    with pytest.raises(ValueError, match="k_shot"):
        EpisodeSampler(x, y, 2, 0, 1)
    with pytest.raises(ValueError, match="every class"):
        prototypes(torch.zeros(2, 3), torch.tensor([0, 0]), 2)


def test_zero_shot_predict_is_argmax_cosine_like_sklearn():
    from sklearn.metrics.pairwise import cosine_similarity

    from dlterms.methods.protonets import zero_shot_predict

    torch.manual_seed(2)
    a, b = torch.randn(30, 6), torch.randn(4, 6) * torch.tensor([[1.0], [5.0], [0.1], [2.0]])
    ref = cosine_similarity(a.numpy(), b.numpy()).argmax(1)
    assert zero_shot_predict(a, b).tolist() == ref.tolist()
    with pytest.raises(ValueError, match="class embeddings"):
        zero_shot_predict(a, torch.zeros(4, 5))


def test_side_info_prototypes_logits_and_shape_check():
    from dlterms.methods.protonets import SideInfoPrototypes

    torch.manual_seed(3)
    m = SideInfoPrototypes(torch.nn.Linear(5, 3), torch.nn.Linear(4, 3))
    x, info = torch.randn(7, 5), torch.randn(6, 4)
    ref = -(torch.cdist(m.encoder(x), m.side_encoder(info)) ** 2)
    assert_close_f32(m(x, info), ref, n=5 + 4 + 2 * 3 + 4)  # the two encoders' sums, then 3-d distances
    with pytest.raises(ValueError, match="class_info"):
        m(x, torch.zeros(4))
