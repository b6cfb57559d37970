r"""Out-of-distribution scores computed from a trained classifier. Higher = more in-distribution.

Maximum softmax probability (Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and
Out-of-Distribution Examples in Neural Networks", ICLR 2017):

$$S_{\text{MSP}}(x) = \max_k \mathrm{softmax}(f(x))_k$$

Energy (Liu et al., "Energy-based Out-of-distribution Detection", NeurIPS 2020). The free energy of
the logits is $E(x) = -T \log\sum_k e^{f_k(x)/T}$, low for in-distribution inputs, so the score is

$$S_{\text{energy}}(x) = -E(x) = T \log \sum_k e^{f_k(x)/T}$$

Mahalanobis (Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution Samples and
Adversarial Attacks", NeurIPS 2018): fit class means $\mu_c$ and one shared covariance $\Sigma$ to
the training features $h(x)$ (e.g. the penultimate layer), then

$$S_{\text{Maha}}(x) = -\min_c\,(h(x) - \mu_c)^\top \Sigma^{-1} (h(x) - \mu_c)$$

(the paper's input pre-processing and layer ensembles are left out).
"""

from __future__ import annotations

import torch

from dlterms.nn.activations import softmax

__all__ = ["max_softmax_score", "energy_score", "MahalanobisScorer"]


def _check_logits(logits: torch.Tensor) -> None:
    if logits.dim() != 2 or logits.size(1) < 2:
        raise ValueError(f"logits must have shape (N, K) with K >= 2, got {tuple(logits.shape)}")


def max_softmax_score(logits: torch.Tensor) -> torch.Tensor:
    """max_k softmax(logits)_k; (N,)."""
    _check_logits(logits)
    return softmax(logits, dim=1).max(dim=1).values


def energy_score(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """-E(x) = T logsumexp(logits / T); (N,)."""
    _check_logits(logits)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = logits / temperature
    m = z.max(dim=1, keepdim=True).values  # subtract the max for a stable log-sum-exp
    return temperature * (m.squeeze(1) + torch.log(torch.exp(z - m).sum(dim=1)))


class MahalanobisScorer:
    """Class-conditional Gaussians with a shared covariance, fitted on in-distribution features.

    Args:
        eps: added to the covariance's diagonal (times its mean variance) so it can be inverted.
    """

    def __init__(self, eps: float = 1e-6):
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.eps = eps
        self.means: torch.Tensor | None = None
        self.precision: torch.Tensor | None = None

    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> MahalanobisScorer:
        if features.dim() != 2 or len(features) != len(labels):
            raise ValueError(
                f"features must be (N, D) with one label each, got {tuple(features.shape)} and {tuple(labels.shape)}"
            )
        feats = features.detach().double()
        classes = labels.unique()
        self.means = torch.stack([feats[labels == c].mean(0) for c in classes])  # (C, D) mu_c
        centred = feats - self.means[torch.searchsorted(classes, labels)]  # h(x) - mu_{y(x)}
        cov = centred.t() @ centred / len(feats)  # (D, D) shared Sigma (maximum likelihood)
        cov += self.eps * cov.diagonal().mean() * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        self.precision = torch.linalg.inv(cov)  # Sigma^-1
        return self

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """Squared Mahalanobis distance to every class mean; (N, C)."""
        if self.means is None:
            raise ValueError("call fit(features, labels) before scoring")
        d = features.detach().double()[:, None, :] - self.means[None]  # (N, C, D)
        return torch.einsum("ncd,de,nce->nc", d, self.precision, d)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """-min_c distance; (N,) float32."""
        return (-self.distances(features).min(dim=1).values).float()
