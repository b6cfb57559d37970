"""Metric-learning losses against torch's TripletMarginLoss, brute-force loops and hand-worked values."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from dlterms.methods.metric_learning import (
    TripletMarginLoss,
    batch_hard_triplet_loss,
    contrastive_loss,
    nt_xent_loss,
    pairwise_contrastive_loss,
    pk_batch_indices,
    triplet_margin_loss,
)


@pytest.mark.parametrize(
    "p,eps,swap,margin,reduction",
    [
        (2.0, 1e-6, False, 1.0, "mean"),
        (1.0, 1e-3, True, 0.5, "sum"),
        (3.0, 0.0, True, 2.0, "none"),
        (2.0, 1e-6, True, 1.0, "mean"),
    ],
)
def test_triplet_matches_torch(p, eps, swap, margin, reduction):
    g = torch.Generator().manual_seed(0)
    a, pos, neg = (torch.randn(32, 8, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    ours = TripletMarginLoss(margin, p, eps, swap, reduction)(a, pos, neg)
    ref = torch.nn.TripletMarginLoss(margin, p, eps, swap, reduction=reduction)(a, pos, neg)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    g1 = torch.autograd.grad(ours.sum(), (a, pos, neg))
    g2 = torch.autograd.grad(ref.sum(), (a, pos, neg))
    for x, y in zip(g1, g2):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)


def test_contrastive_hand_worked():
    x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    x2 = torch.tensor([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]])
    same = torch.tensor([1, 0, 0])
    # d = 5, 0.5, 5: same pair 25; different at 0.5 < m=1: 0.25; different at 5 > m: 0
    torch.testing.assert_close(
        contrastive_loss(x1, x2, same, margin=1.0, reduction="none"), torch.tensor([25.0, 0.25, 0.0])
    )


def test_pairwise_contrastive_matches_explicit_pairs():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(24, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (24,), generator=g)
    pairs = list(itertools.combinations(range(24), 2))
    i, j = (torch.tensor(t) for t in zip(*pairs))
    same = (y[i] == y[j]).long()
    per_pair = contrastive_loss(e[i], e[j], same, margin=1.5, reduction="none")
    # the distance matrix adds 1e-12 under the square root, a change of at most 1e-12 in d^2 and 1e-6 in d
    torch.testing.assert_close(
        pairwise_contrastive_loss(e, y, margin=1.5, balanced=False), per_pair.mean(), rtol=0, atol=1e-9
    )
    s = same.bool()
    balanced = 0.5 * per_pair[s].mean() + 0.5 * per_pair[~s].mean()
    ours = pairwise_contrastive_loss(e, y, margin=1.5)
    torch.testing.assert_close(ours, balanced, rtol=0, atol=1e-9)
    g1 = torch.autograd.grad(ours, e)[0]
    g2 = torch.autograd.grad(balanced, e)[0]
    torch.testing.assert_close(g1, g2, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="same-class"):
        pairwise_contrastive_loss(e[:4], torch.arange(4))
    with pytest.raises(ValueError, match="margin"):
        pairwise_contrastive_loss(e, y, margin=0.0)
    with pytest.raises(ValueError, match="labels"):
        pairwise_contrastive_loss(e, y[:3])


def test_pk_batches():
    y = torch.tensor([0] * 5 + [1] * 3 + [2] * 6 + [3] * 1 + [4] * 4)
    idx = pk_batch_indices(y, p=3, k=3, n_batches=50, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (50 * 9,)
    for b in idx.view(50, 3, 3):
        assert len(set(b.flatten().tolist())) == 9  # no example twice in a batch
        for group in y[b]:
            assert len(set(group.tolist())) == 1  # K examples of one class
        assert len(set(y[b[:, 0]].tolist())) == 3  # P different classes
    assert 3 not in y[idx].tolist()  # class 3 has fewer than K examples
    assert set(y[idx].tolist()) == {0, 1, 2, 4}
    again = pk_batch_indices(y, p=3, k=3, n_batches=50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)
    with pytest.raises(ValueError, match="p=5"):
        pk_batch_indices(y, p=5, k=3, n_batches=1)
    with pytest.raises(ValueError, match="k must"):
        pk_batch_indices(y, p=2, k=0, n_batches=1)


def test_batch_hard_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    losses = []
    for i in range(12):
        dp = max(float((x[i] - x[j]).norm()) for j in range(12) if j != i and y[j] == y[i])
        dn = min(float((x[i] - x[k]).norm()) for k in range(12) if y[k] != y[i])
        losses.append(max(0.0, 0.5 + dp - dn))
    assert float(batch_hard_triplet_loss(x, y, margin=0.5)) == pytest.approx(sum(losses) / 12, rel=1e-9)
    # and it is the largest loss over all valid triplets of each anchor
    for i in range(12):
        worst = max(
            float(triplet_margin_loss(x[[i]], x[[j]], x[[k]], 0.5, eps=0.0))
            for j, k in itertools.product(range(12), range(12))
            if j != i and y[j] == y[i] and y[k] != y[i]
        )
        assert worst == pytest.approx(losses[i], rel=1e-6, abs=1e-9)


def test_nt_xent_matches_loop():
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    tau, N, total = 0.3, 5, 0.0
    for i in range(2 * N):
        j = (i + N) % (2 * N)
        den = sum(torch.exp(z[i] @ z[k] / tau) for k in range(2 * N) if k != i)
        total += float(-torch.log(torch.exp(z[i] @ z[j] / tau) / den))
    assert float(nt_xent_loss(z1, z2, tau)) == pytest.approx(total / (2 * N), rel=1e-10)


def test_errors():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="margin must be > 0"):
        TripletMarginLoss(margin=0)
    with pytest.raises(ValueError, match="reduction must be"):
        triplet_margin_loss(x, x, x, reduction="avg")
    with pytest.raises(ValueError, match="same shape"):
        triplet_margin_loss(x, x, torch.randn(3, 2))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt_xent_loss(x, x, 0.0)
    with pytest.raises(ValueError, match="at least two examples of one class"):
        batch_hard_triplet_loss(x, torch.arange(4))


def test_simclr_views_and_training_step():
    from dlterms.data.augment import GaussianNoise
    from dlterms.methods.metric_learning import SimCLR

    torch.manual_seed(0)
    model = SimCLR(torch.nn.Linear(6, 4), 4, 3, GaussianNoise(0.5), torch.Generator().manual_seed(0))
    x = torch.randn(16, 6)
    z1, z2 = model(x)
    assert z1.shape == z2.shape == (16, 3) and not torch.allclose(z1, z2)  # two different views
    assert model.features(x).shape == (16, 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nt_xent_loss(*model(x), 0.5)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="augment must be a callable"):
        SimCLR(torch.nn.Linear(6, 4), 4, 3, None)
