r"""Feature scaling: standardisation, min-max scaling and per-channel normalisation, fitted on training data.

A scaler learns its statistics from the training set only (`fit`) and applies them unchanged to any
other data (`transform`), so nothing about the test set leaks into training. The two classic maps,
with the same conventions as scikit-learn's `StandardScaler` and `MinMaxScaler`:

$$\text{standard:}\quad x'_j = \frac{x_j - \mu_j}{\sigma_j}, \qquad
  \mu_j = \frac{1}{n}\sum_i x_{ij}, \quad \sigma_j = \sqrt{\frac{1}{n}\sum_i (x_{ij} - \mu_j)^2}$$

$$\text{min-max:}\quad x'_j = a + (b - a)\,\frac{x_j - \min_j}{\max_j - \min_j}$$

for `feature_range` $(a, b)$. $\sigma_j$ is the population standard deviation (ddof 0, as scikit-learn);
a constant feature ($\sigma_j = 0$ or $\max_j = \min_j$) gets scale 1, so it maps to 0 (or $a$) instead
of dividing by zero. `ChannelStandardScaler` standardises images or signals (B, C, *) per channel $c$,
with $\mu_c, \sigma_c$ over every example and position of that channel (the usual "normalise with the
dataset's per-channel mean and std" of image pipelines).

Inputs are 2-D (n_samples, n_features), as NumPy arrays or torch tensors; the output has the input's
type. Statistics are kept in float64.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["StandardScaler", "MinMaxScaler", "ChannelStandardScaler"]


def _to_torch(x) -> tuple[torch.Tensor, bool]:
    if isinstance(x, torch.Tensor):
        return x, False
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x), True
    raise ValueError(f"x must be a NumPy array or a torch tensor, got {type(x).__name__}")


def _back(y: torch.Tensor, like, was_numpy: bool):
    return y.numpy().astype(like.dtype if np.issubdtype(like.dtype, np.floating) else np.float64) if was_numpy else y


class _Scaler:
    """fit / transform / fit_transform / inverse_transform over the first axis; subclasses give the stats."""

    n_features_in_: int | None = None

    def _check_shape(self, x: torch.Tensor) -> None:
        if x.dim() != 2:
            raise ValueError(
                f"{type(self).__name__} expects 2-D input (n_samples, n_features), got shape {tuple(x.shape)}"
            )

    def _fit_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(offset, scale) with transform(x) = (x - offset) / scale (+ subclass's shift)."""
        raise NotImplementedError

    def fit(self, x) -> _Scaler:
        t, _ = _to_torch(x)
        self._check_shape(t)
        if t.shape[0] < 1:
            raise ValueError(f"{type(self).__name__}.fit needs at least one sample, got shape {tuple(t.shape)}")
        t = t.detach().to("cpu", torch.float64)
        self.offset_, self.scale_ = self._fit_stats(t)
        self.n_features_in_ = int(self.offset_.numel())
        return self

    def _stats_for(self, t: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if self.n_features_in_ is None:
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit(x_train) before {name}")
        self._check_shape(t)
        if t.shape[1] != self.n_features_in_:
            raise ValueError(
                f"x has {t.shape[1]} features, but {type(self).__name__} was fitted on {self.n_features_in_} features"
            )
        dtype = t.dtype if t.is_floating_point() else torch.float64
        shape = [1, -1] + [1] * (t.dim() - 2)  # broadcast per feature / channel
        return (self.offset_.to(t.device, dtype).view(shape), self.scale_.to(t.device, dtype).view(shape))

    def transform(self, x):
        t, was_np = _to_torch(x)
        offset, scale = self._stats_for(t, "transform")
        y = (t - offset) / scale + self._shift(t)
        return _back(y, x, was_np)

    def inverse_transform(self, x):
        t, was_np = _to_torch(x)
        offset, scale = self._stats_for(t, "inverse_transform")
        y = (t - self._shift(t)) * scale + offset
        return _back(y, x, was_np)

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def _shift(self, t: torch.Tensor) -> float:
        return 0.0


class StandardScaler(_Scaler):
    """x' = (x - mu) / sigma per feature, mu and sigma (ddof 0) from the data given to `fit`."""

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean, self.with_std = with_mean, with_std

    def _fit_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dims = [0, *range(2, x.dim())]  # every axis but the feature/channel axis
        mu = x.mean(dim=dims)  # mu_j = (1/n) sum_i x_ij
        # sigma_j = sqrt((1/n) sum_i (x_ij - mu_j)^2)
        var = ((x - mu.view([1, -1] + [1] * (x.dim() - 2))) ** 2).mean(dim=dims)
        sigma = torch.sqrt(var)
        self.mean_, self.var_ = mu, var
        sigma = torch.where(sigma == 0, torch.ones_like(sigma), sigma)  # constant feature: scale 1
        offset = mu if self.with_mean else torch.zeros_like(mu)
        scale = sigma if self.with_std else torch.ones_like(sigma)
        return offset, scale

    def __repr__(self) -> str:
        return f"{type(self).__name__}(with_mean={self.with_mean}, with_std={self.with_std})"


class ChannelStandardScaler(StandardScaler):
    """Standardisation per channel of (B, C, *) images or signals: one mean and std per channel C,
    over every example and every position of that channel."""

    def _check_shape(self, x: torch.Tensor) -> None:
        if x.dim() < 3:
            raise ValueError(
                f"ChannelStandardScaler expects (B, C, L) or (B, C, H, W) input, got shape "
                f"{tuple(x.shape)}; use StandardScaler for (n_samples, n_features)"
            )


class MinMaxScaler(_Scaler):
    """x' = a + (b - a) (x - min) / (max - min) per feature, min and max from the data given to `fit`."""

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0), clip: bool = False):
        a, b = feature_range
        if not a < b:
            raise ValueError(f"feature_range must be (min, max) with min < max, got {feature_range}")
        self.feature_range, self.clip = (float(a), float(b)), clip

    def _fit_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = x.amin(dim=0), x.amax(dim=0)
        self.data_min_, self.data_max_ = lo, hi
        rng = hi - lo
        rng = torch.where(rng == 0, torch.ones_like(rng), rng)  # constant feature: range 1
        a, b = self.feature_range
        # x' = a + (x - min) / ((max - min) / (b - a))
        return lo, rng / (b - a)

    def _shift(self, t: torch.Tensor) -> float:
        return self.feature_range[0]

    def transform(self, x):
        y = super().transform(x)
        if self.clip:
            a, b = self.feature_range
            y = np.clip(y, a, b) if isinstance(y, np.ndarray) else y.clamp(a, b)
        return y

    def __repr__(self) -> str:
        return f"{type(self).__name__}(feature_range={self.feature_range}, clip={self.clip})"
