"""Shared pieces of the representation experiments."""

from __future__ import annotations

import torch

from dlterms.losses import cross_entropy
from dlterms.nn import Linear
from dlterms.optim import Adam
from dlterms.run import Run
from dlterms.training import fit


def linear_probe(run: Run, ftr: torch.Tensor, ytr: torch.Tensor, fte: torch.Tensor, yte: torch.Tensor) -> float:
    """Test accuracy of a linear classifier (10 classes, full batch, 100 Adam steps) trained on frozen,
    standardised features: how much of the label a representation makes linearly readable."""
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd
    torch.manual_seed(run.seed)
    m = Linear(ftr.shape[1], 10).to(run.device)
    fit(
        m,
        (ftr, ytr),
        loss_fn=cross_entropy,
        optimizer=Adam(m.parameters(), lr=1e-2),
        epochs=100,
        batch_size=None,
        seed=run.seed,
    )
    with torch.no_grad():
        return float((m(fte).argmax(1) == yte).float().mean())
