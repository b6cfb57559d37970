r"""Calibration: does a classifier's confidence match how often it is right?

A classifier is calibrated when, among the predictions it makes with confidence $c$, a fraction $c$ are
correct. Guo, Pleiss, Sun & Weinberger ("On Calibration of Modern Neural Networks", ICML 2017) measure
it by sorting the $n$ predictions into $M$ equal-width bins of confidence $\hat p_i = \max_k
\mathrm{softmax}(z_i)_k$, with $B_m = \{ i : \frac{m-1}{M} < \hat p_i \le \frac{m}{M} \}$, and comparing
each bin's accuracy with its mean confidence:

$$\mathrm{acc}(B_m) = \frac{1}{|B_m|}\sum_{i \in B_m} [\hat y_i = y_i], \qquad
  \mathrm{conf}(B_m) = \frac{1}{|B_m|}\sum_{i \in B_m} \hat p_i$$

$$\mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,\bigl|\mathrm{acc}(B_m) - \mathrm{conf}(B_m)\bigr|$$

A reliability diagram plots $\mathrm{acc}(B_m)$ against $\mathrm{conf}(B_m)$; the diagonal is perfect
calibration, bars below it are over-confidence. (Naming rule: `*_error` is lower-better.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ReliabilityBins", "reliability_bins", "expected_calibration_error", "confidences"]


@dataclass
class ReliabilityBins:
    """Per-bin statistics of a reliability diagram (empty bins have count 0 and NaN means)."""

    edges: torch.Tensor  # (M + 1,) bin edges from 0 to 1
    count: torch.Tensor  # (M,) |B_m|
    accuracy: torch.Tensor  # (M,) acc(B_m), the fraction of hits
    confidence: torch.Tensor  # (M,) conf(B_m), the mean confidence

    @property
    def ece(self) -> float:
        """sum_m |B_m|/n |acc(B_m) - conf(B_m)|, over the non-empty bins."""
        keep = self.count > 0
        n = self.count.sum()
        return float((self.count[keep] / n * (self.accuracy[keep] - self.confidence[keep]).abs()).sum())


def confidences(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(max probability p_hat, whether the arg-max is the label) for probabilities (n, K) and labels (n,)."""
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(
            f"expected probabilities (n, K) and labels (n,), got {tuple(probs.shape)} and {tuple(labels.shape)}"
        )
    conf, pred = probs.max(dim=1)
    return conf, (pred == labels)


def reliability_bins(
    confidence: torch.Tensor, hit: torch.Tensor, n_bins: int = 15, right: bool = True
) -> ReliabilityBins:
    """Bin `confidence` (n,) in [0, 1] into `n_bins` equal-width bins and average `hit` (n,) per bin.

    `right=True` uses Guo et al.'s bins ((m-1)/M, m/M] (a confidence of exactly 0 joins the first);
    `right=False` uses [(m-1)/M, m/M) with 1 in the last bin, as `sklearn.calibration.calibration_curve`.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    confidence = confidence.detach().to(torch.float64).flatten()
    hit = hit.detach().to(torch.float64).flatten()
    if confidence.shape != hit.shape or len(confidence) == 0:
        raise ValueError(
            f"confidence and hit must be non-empty and of equal length, got {len(confidence)} and {len(hit)}"
        )
    if confidence.min() < 0 or confidence.max() > 1:
        raise ValueError(
            f"confidences must lie in [0, 1], got range [{float(confidence.min())}, {float(confidence.max())}]"
        )
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    inner = edges[1:-1].contiguous()
    # bin index m - 1 of each prediction
    b = torch.bucketize(confidence, inner, right=not right)  # right=True: (e_{m-1}, e_m]; else [e_{m-1}, e_m)
    count = torch.bincount(b, minlength=n_bins).to(torch.float64)
    hits = torch.bincount(b, weights=hit, minlength=n_bins)
    conf_sum = torch.bincount(b, weights=confidence, minlength=n_bins)
    with torch.no_grad():
        acc = torch.where(count > 0, hits / count.clamp(min=1), torch.full_like(count, float("nan")))
        conf = torch.where(count > 0, conf_sum / count.clamp(min=1), torch.full_like(count, float("nan")))
    return ReliabilityBins(edges=edges, count=count, accuracy=acc, confidence=conf)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE of class probabilities `probs` (n, K) against integer `labels` (n,), with `n_bins` bins."""
    conf, hit = confidences(probs, labels)
    return reliability_bins(conf, hit, n_bins).ece
