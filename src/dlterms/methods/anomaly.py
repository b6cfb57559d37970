r"""Anomaly detection by reconstruction error: an autoencoder trained on normal data only.

An autoencoder $g \circ f$ trained to reconstruct normal examples learns their structure; inputs
unlike them reconstruct worse (Japkowicz et al., 1995; Sakurada & Yairi, "Anomaly Detection Using
Autoencoders with Nonlinear Dimensionality Reduction", 2014). The anomaly score is

$$a(x) = \frac{1}{d}\lVert x - g(f(x))\rVert_2^2$$

and $x$ is flagged when $a(x) > \tau$, with $\tau$ a high quantile of the scores of held-out normal
data (the false-alarm rate is then about 1 - quantile). Higher score = more anomalous.
"""

from __future__ import annotations

import torch
from torch import nn

from dlterms.losses import mse_loss
from dlterms.optim import Adam
from dlterms.training import History, fit

__all__ = ["ReconstructionDetector"]


class ReconstructionDetector:
    """Wraps an autoencoder module (x -> reconstruction of x, same shape).

    Args:
        autoencoder: e.g. `dlterms.models.autoencoder.Autoencoder`.
    """

    def __init__(self, autoencoder: nn.Module):
        self.model = autoencoder
        self.threshold_: float | None = None

    def fit(
        self, x_normal: torch.Tensor, epochs: int = 100, lr: float = 1e-3, batch_size: int | None = 64, seed: int = 0
    ) -> History:
        """Train to reconstruct `x_normal` (normal data only) with mean squared error."""
        if len(x_normal) == 0:
            raise ValueError("x_normal must hold at least one example")
        return fit(
            self.model,
            (x_normal, x_normal),
            loss_fn=mse_loss,
            optimizer=Adam(self.model.parameters(), lr=lr),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
        )

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """a(x) = mean over features of (x - g(f(x)))^2; (N,)."""
        was = self.model.training
        self.model.eval()
        try:
            dev = next(self.model.parameters()).device
            x = x.to(dev)
            err = (x - self.model(x)).pow(2)
        finally:
            self.model.train(was)
        return err.reshape(len(x), -1).mean(dim=1)

    def set_threshold(self, x_normal_val: torch.Tensor, quantile: float = 0.95) -> float:
        """tau = the `quantile` of the scores of held-out normal data."""
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {quantile}")
        self.threshold_ = float(torch.quantile(self.score(x_normal_val), quantile))
        return self.threshold_

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """1 for anomalies (score > tau), 0 for normal; (N,) int64."""
        if self.threshold_ is None:
            raise ValueError("call set_threshold(x_normal_val) before predict")
        return (self.score(x) > self.threshold_).long()
