"""Triplet loss with batch-hard mining: an embedding of the digits where same-class points are closer.

An MLP encoder (64-128-32, L2-normalised output) is trained on the digits' training split with the
batch-hard triplet loss (margin 0.2): each batch of 128 contributes, for every anchor, its hardest
positive and hardest negative. Claims: on 5000 random held-out triplets (anchor, positive, negative all
from the test split) >= 95 % satisfy the margin, d(a, n) >= d(a, p) + 0.2; and recall@1 (is a test
point's nearest other test point of its class?) rises over training, from the untrained encoder to the
end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlterms.data.datasets import digits
from dlterms.methods.metric_learning import batch_hard_triplet_loss
from dlterms.models.siamese import SiameseNetwork
from dlterms.optim import Adam
from dlterms.params import Sweep
from dlterms.run import Run, experiment
from dlterms.training import Every, ProgressCallback, fit


def _recall_at_1(net: SiameseNetwork, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        e = net.embed(x)
        D = torch.cdist(e, e)
        D.fill_diagonal_(float("inf"))
        r = float((y[D.argmin(dim=1)] == y).float().mean())
    net.train()
    return r


@dataclass(frozen=True)
class Config:
    """Parameters of the triplet-loss experiment; the defaults are the recorded run."""

    margin: float = 0.2  # triplet margin m (the embeddings are L2-normalised, so distances are in [0, 2])
    embedding: int = 32  # embedding size
    hidden: tuple[int, ...] = (128,)  # encoder hidden widths
    epochs: int = 40  # training epochs
    lr: float = 1e-3  # Adam step size
    batch_size: int = 128  # examples per batch (each anchor mines its hardest positive and negative here)
    triplets: int = 5000  # random held-out triplets the margin is measured on

    def __post_init__(self) -> None:
        if not 0 < self.margin < 2:
            raise ValueError(f"margin must be in (0, 2) (unit-norm embeddings), got {self.margin!r}")
        if self.embedding < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"embedding and hidden widths must be >= 1, got {self.embedding!r}, {self.hidden!r}")
        if self.epochs < 1 or self.batch_size < 2 or self.triplets < 1 or not self.lr > 0:
            raise ValueError(
                "need epochs >= 1, batch_size >= 2, triplets >= 1 and lr > 0, got "
                f"{self.epochs!r}, {self.batch_size!r}, {self.triplets!r}, {self.lr!r}"
            )


@experiment(
    "triplet-loss",
    config=Config,
    sweeps=(
        Sweep(
            "margin",
            (0.05, 0.1, 0.2, 0.5, 1.0),
            "How does the margin change the retrieval quality (recall@1) of the L2-normalised embedding?",
            metric="recall_at_1_trained",
        ),
    ),
)
def triplet_loss(run: Run, cfg: Config) -> None:
    d = digits(seed=run.seed).to(run.device)
    torch.manual_seed(run.seed)
    net = SiameseNetwork(64, embedding_dim=cfg.embedding, hidden=cfg.hidden, normalize=True).to(run.device)
    recall0 = _recall_at_1(net, d.x_test, d.y_test)
    rec = Every(1, lambda s: _recall_at_1(s.model, d.x_test, d.y_test), on="epoch")
    fit(
        net,
        (d.x_train, d.y_train),
        loss_fn=lambda e, y: batch_hard_triplet_loss(e, y, margin=cfg.margin),
        optimizer=Adam(net.parameters(), lr=cfg.lr),
        epochs=3 if run.quick else cfg.epochs,
        batch_size=cfg.batch_size,
        seed=run.seed,
        forward=lambda m, x: m.embed(x),
        callbacks=[rec, ProgressCallback(run.progress, "triplet")],
    )
    recalls = [recall0, *rec.values]

    g = run.generator(1)
    y = d.y_test.cpu()
    n = cfg.triplets
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
    frac = float((d_an >= d_ap + cfg.margin).float().mean())
    run.metric("heldout_triplets_satisfying_margin", frac, key=True)
    run.metric("recall_at_1_untrained", recall0)
    run.metric("recall_at_1_trained", recalls[-1])
    run.metric("recall_at_1_by_epoch", recalls)
    run.check_ge(f"held-out triplets satisfying the margin d(a,n) >= d(a,p) + {cfg.margin:g}", frac, 0.95)
    run.check(
        "recall@1 on the test split rises over training",
        recalls[-1] > recalls[0],
        observed=recalls[-1],
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
        a2.axvline(cfg.margin, c="r", ls="--", label=f"margin {cfg.margin:g}")
        a2.set(xlabel="d(a, n) - d(a, p)", ylabel="held-out triplets", title=f"{frac:.1%} satisfy the margin")
        a2.legend()
