r"""Batch normalisation (1-D, 2-D) and layer normalisation.

**Batch normalisation** (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", ICML 2015). For each channel $c$, over the $m$ values of that
channel in a mini-batch (all examples, and all positions for (B, C, L) or (B, C, H, W) inputs):

$$\mu_c = \frac{1}{m}\sum_i x_{ic}, \qquad \sigma_c^2 = \frac{1}{m}\sum_i (x_{ic} - \mu_c)^2$$
$$\hat x_{ic} = \frac{x_{ic} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}}, \qquad
  y_{ic} = \gamma_c\,\hat x_{ic} + \beta_c$$

During training the running estimates used at evaluation time are updated as PyTorch defines them,
with an exponential moving average whose variance term is the *unbiased* batch variance:

$$\hat\mu_c \leftarrow (1 - \alpha)\,\hat\mu_c + \alpha\,\mu_c, \qquad
  \hat\sigma_c^2 \leftarrow (1 - \alpha)\,\hat\sigma_c^2 + \alpha\,\frac{m}{m - 1}\,\sigma_c^2$$

where $\alpha$ is `momentum` (0.1 by default; `momentum=None` uses the cumulative average,
$\alpha = 1/t$ after $t$ batches). In evaluation mode $\hat\mu, \hat\sigma^2$ replace
$\mu, \sigma^2$. With `track_running_stats=False` batch statistics are used in both modes.

**Layer normalisation** (Ba, Kiros & Hinton, "Layer Normalization", 2016) normalises each example
over its last $D$ dimensions (`normalized_shape`) instead of over the batch, so it behaves the same
in training and evaluation and for any batch size:

$$\mu = \frac{1}{H}\sum_{j} x_j, \quad \sigma^2 = \frac{1}{H}\sum_j (x_j - \mu)^2, \quad
  y_j = \gamma_j \frac{x_j - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_j$$

Shapes are batch first: (B, C) or (B, C, L) for `BatchNorm1d`, (B, C, H, W) for `BatchNorm2d`,
(..., *normalized_shape) for `LayerNorm`. Arguments and parameter/buffer names are PyTorch's, so a
state dict moves between `torch.nn.BatchNorm2d` and `dlterms.nn.BatchNorm2d` unchanged.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "batch_norm", "layer_norm"]


def batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
               weight: torch.Tensor | None = None, bias: torch.Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """Batch normalisation of `x` (B, C, *) over every dimension except the channel dimension 1.

    When `training` (or no running statistics are given) the batch's statistics normalise `x`, and
    `running_mean`/`running_var` (if given) are updated in place with factor `momentum`. Otherwise the
    running statistics normalise `x`.
    """
    C = x.shape[1]
    dims = [0, *range(2, x.dim())]  # every axis but the channel axis
    shape = [1, C] + [1] * (x.dim() - 2)  # (1, C, 1, ...) to broadcast per-channel vectors
    use_batch = training or running_mean is None or running_var is None
    if use_batch:
        m = x.numel() // C  # values per channel
        if training and m <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input of shape "
                             f"{tuple(x.shape)}")
        # mu_c = (1/m) sum_i x_ic
        mu = x.mean(dim=dims)  # (C,)
        xc = x - mu.view(shape)  # x_ic - mu_c
        # sigma_c^2 = (1/m) sum_i (x_ic - mu_c)^2   (biased: used to normalise)
        var = (xc * xc).mean(dim=dims)  # (C,)
        if training and running_mean is not None and running_var is not None:
            with torch.no_grad():
                # running <- (1 - alpha) running + alpha * batch statistic; variance unbiased: m/(m-1)
                running_mean.mul_(1.0 - momentum).add_(momentum * mu.detach())
                running_var.mul_(1.0 - momentum).add_(momentum * var.detach() * m / (m - 1))
    else:
        xc, var = x - running_mean.view(shape), running_var
    # x_hat = (x - mu) / sqrt(sigma^2 + eps)
    x_hat = xc * torch.rsqrt(var.view(shape) + eps)
    if weight is not None:
        x_hat = x_hat * weight.view(shape)  # gamma_c
    if bias is not None:
        x_hat = x_hat + bias.view(shape)  # beta_c
    return x_hat


class _BatchNorm(nn.Module):
    """Shared code of BatchNorm1d/2d; subclasses say which input ranks they accept."""

    _ranks: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features < 1:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1] or None (cumulative average), got {momentum}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))  # gamma
            self.bias = nn.Parameter(torch.zeros(num_features))  # beta
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in self._ranks:
            ranks = " or ".join(f"{r}-D" for r in self._ranks)
            raise ValueError(f"{type(self).__name__} expects a {ranks} input (batch first), "
                             f"got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got {x.shape[1]} channels "
                             f"in input of shape {tuple(x.shape)}")
        alpha = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average: alpha_t = 1 / t
                alpha = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or not self.track_running_stats
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=use_batch_stats, momentum=alpha, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (B, C) or (B, C, L) inputs, one mean/variance per channel C."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (B, C, H, W) inputs, one mean/variance per channel C."""

    _ranks = (4,)


def layer_norm(x: torch.Tensor, normalized_shape: tuple[int, ...], weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Normalise `x` over its last `len(normalized_shape)` dimensions, then scale and shift."""
    dims = tuple(range(-len(normalized_shape), 0))
    # mu = (1/H) sum_j x_j ;  sigma^2 = (1/H) sum_j (x_j - mu)^2   (biased)
    mu = x.mean(dim=dims, keepdim=True)  # (..., 1, ..., 1)
    xc = x - mu
    var = (xc * xc).mean(dim=dims, keepdim=True)
    # y = gamma (x - mu) / sqrt(sigma^2 + eps) + beta
    y = xc * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class LayerNorm(nn.Module):
    """Layer normalisation over the trailing `normalized_shape` dimensions of each example."""

    def __init__(self, normalized_shape: int | tuple[int, ...] | list[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        normalized_shape = tuple(int(d) for d in normalized_shape)
        if not normalized_shape or any(d < 1 for d in normalized_shape):
            raise ValueError(f"normalized_shape must be a positive int or a non-empty tuple of positive "
                             f"ints, got {normalized_shape}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.normalized_shape, self.eps, self.elementwise_affine = normalized_shape, eps, elementwise_affine
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(normalized_shape))  # gamma
            if bias:
                self.bias = nn.Parameter(torch.zeros(normalized_shape))  # beta
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = len(self.normalized_shape)
        if tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(f"LayerNorm expects input whose last dimensions are {self.normalized_shape}, "
                             f"got shape {tuple(x.shape)}")
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
