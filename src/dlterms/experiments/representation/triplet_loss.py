"""Triplet loss with batch-hard mining: an embedding of the digits where same-class points are closer.

An MLP encoder (64-128-32, L2-normalised output) is trained on the digits' training split with the
batch-hard triplet loss (margin 0.2): each batch of 128 contributes, for every anchor, its hardest
positive and hardest negative. Claims: on 5000 random held-out triplets (anchor, positive, negative all
from the test split) >= 95 % satisfy the margin, d(a, n) >= d(a, p) + 0.2; and recall@1 (is a test
point's nearest other test point of its class?) rises over training, from the untrained encoder to the
end.
"""

from __future__ import annotations

import torch

from dlterms.data.datasets import digits
from dlterms.methods.metric_learning import batch_hard_triplet_loss
from dlterms.models.siamese import SiameseNetwork
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import Every, ProgressCallback, fit

MARGIN = 0.2


def _recall_at_1(net: SiameseNetwork, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        e = net.embed(x)
        D = torch.cdist(e, e)
        D.fill_diagonal_(float("inf"))
        r = float((y[D.argmin(dim=1)] == y).float().mean())
    net.train()
    return r


@experiment("triplet-loss")
def triplet_loss(run: Run) -> None:
    d = digits(seed=run.seed).to(run.device)
    torch.manual_seed(run.seed)
    net = SiameseNetwork(64, embedding_dim=32, hidden=(128,), normalize=True).to(run.device)
    recall0 = _recall_at_1(net, d.x_test, d.y_test)
    rec = Every(1, lambda s: _recall_at_1(s.model, d.x_test, d.y_test), on="epoch")
    fit(
        net,
        (d.x_train, d.y_train),
        loss_fn=lambda e, y: batch_hard_triplet_loss(e, y, margin=MARGIN),
        optimizer=Adam(net.parameters(), lr=1e-3),
        epochs=3 if run.quick else 40,
        batch_size=128,
        seed=run.seed,
        forward=lambda m, x: m.embed(x),
        callbacks=[rec, ProgressCallback(run.progress, "triplet")],
    )
    recalls = [recall0, *rec.values]

    g = run.generator(1)
    y = d.y_test.cpu()
    n = 5000
    a = torch.randint(len(y), (n,), generator=g)
    p, ng = torch.empty_like(a), torch.empty_like(a)
    for t in range(n):
        pos = ((y == y[a[t]]) & (torch.arange(len(y)) != a[t])).nonzero().squeeze(1)
        neg = (y != y[a[t]]).nonzero().squeeze(1)
        p[t] = pos[torch.randint(len(pos), (1,), generator=g)]
        ng[t] = neg[torch.randint(len(neg), (1,), generator=g)]
    net.eval()
    with torch.no_grad():
        e = net.embed(d.x_test).cpu()
    d_ap, d_an = (e[a] - e[p]).norm(dim=1), (e[a] - e[ng]).norm(dim=1)
    frac = float((d_an >= d_ap + MARGIN).float().mean())
    run.metric("heldout_triplets_satisfying_margin", frac, key=True)
    run.metric("recall_at_1_untrained", recall0)
    run.metric("recall_at_1_trained", recalls[-1])
    run.metric("recall_at_1_by_epoch", [round(r, 4) for r in recalls])
    run.check(
        "held-out triplets satisfying the margin d(a,n) >= d(a,p) + 0.2",
        frac >= 0.95,
        observed=round(frac, 4),
        expected=">= 0.95",
    )
    run.check(
        "recall@1 on the test split rises over training",
        recalls[-1] > recalls[0],
        observed=round(recalls[-1], 4),
        expected=f"> {recalls[0]:.4f} (untrained)",
    )

    with run.figure(
        "training",
        alt="recall@1 of the test split per epoch, and the distribution of "
        "d(a,n) - d(a,p) over held-out triplets with the margin marked",
        figsize=(10, 4),
    ) as fig:
        a1, a2 = fig.subplots(1, 2)
        a1.plot(range(len(recalls)), recalls, "o-", ms=3)
        a1.set(xlabel="epoch (0 = untrained)", ylabel="recall@1 (test)", title="retrieval improves with training")
        a2.hist((d_an - d_ap).numpy(), bins=60)
        a2.axvline(MARGIN, c="r", ls="--", label="margin 0.2")
        a2.set(xlabel="d(a, n) - d(a, p)", ylabel="held-out triplets", title=f"{frac:.1%} satisfy the margin")
        a2.legend()
