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

**The backward is written out**, not left to autograd (which would keep every intermediate of the
equations above and run a dozen full-size kernels). For a group of N values normalised together (a
channel's m values, or a row's H), with upstream gradient $g$ and $r = 1/\sqrt{\sigma^2+\epsilon}$:

$$\frac{\partial\ell}{\partial\beta} = \sum_i g_i, \qquad
  \frac{\partial\ell}{\partial\gamma} = \sum_i g_i\,\hat x_i, \qquad
  \frac{\partial\ell}{\partial x_i} = r\Bigl(\hat g_i - \frac1N\sum_j \hat g_j
      - \hat x_i\,\frac1N\sum_j \hat g_j\,\hat x_j\Bigr), \quad \hat g = \gamma g$$

(the sums over the batch for $\gamma, \beta$ in layer normalisation). The file reads in that order:
the equations as written (`batch_norm_equations`, `layer_norm_equations`), the layers, then the fast
path that runs by default, `autograd.Function`s with that backward (`_BatchNormTrain`,
`_LayerNormRows`), tested equal to the equations. When a gradient must itself be differentiated
(`create_graph=True`) or under `torch.func` transforms, autograd runs through the equations instead
(`dlterms.nn._fastpath`).

Shapes are batch first: (B, C) or (B, C, L) for `BatchNorm1d`, (B, C, H, W) for `BatchNorm2d`,
(..., *normalized_shape) for `LayerNorm`. Arguments and parameter/buffer names are PyTorch's, so a
state dict moves between `torch.nn.BatchNorm2d` and `dlterms.nn.BatchNorm2d` unchanged.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from dlterms.nn._fastpath import create_graph, declare, grads_through, transforms_active

__all__ = [
    "batch_norm_equations",
    "layer_norm_equations",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "batch_norm",
    "layer_norm",
]


# --------------------------------------------------------------------------- the equations


def batch_norm_equations(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Batch normalisation of `x` (B, C, *) over every dimension except the channel dimension 1, as written.

    When `training` (or no running statistics are given) the batch's own statistics normalise `x`, and
    `running_mean`/`running_var` (if given) are updated in place with factor `momentum`. Otherwise the
    running statistics normalise `x`. `batch_norm` computes the same values with the training-mode
    backward written out.
    """
    C = x.shape[1]
    dims = (0, *range(2, x.dim()))  # every dimension but the channels': the m values of a channel
    if training or running_mean is None or running_var is None:
        m = _values_per_channel(x, training)
        # mu_c = (1/m) sum_i x_ic
        mu = x.mean(dim=dims, keepdim=True)  # (1, C, 1, ...)
        # sigma_c^2 = (1/m) sum_i (x_ic - mu_c)^2   (biased: used to normalise)
        var = (x - mu).square().sum(dim=dims, keepdim=True) / m
        if training and running_mean is not None and running_var is not None:
            _update_running_stats(running_mean, running_var, mu.view(C), var.view(C), m, momentum)
    else:  # evaluation: the running statistics stand in for mu and sigma^2
        shape = (1, C) + (1,) * (x.dim() - 2)
        mu, var = running_mean.view(shape), running_var.view(shape)
    # x_hat = (x - mu) / sqrt(sigma^2 + eps)
    y = (x - mu) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.view(-1, *(1,) * (x.dim() - 2))  # gamma_c
    if bias is not None:
        y = y + bias.view(-1, *(1,) * (x.dim() - 2))  # beta_c
    return y


def _values_per_channel(x: torch.Tensor, training: bool) -> int:
    m = x.numel() // x.shape[1]
    if training and m <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input of shape {tuple(x.shape)}")
    return m


@torch.no_grad()
def _update_running_stats(running_mean, running_var, mu: torch.Tensor, var: torch.Tensor, m: int, momentum: float):
    # running <- (1 - alpha) running + alpha * batch statistic (a lerp); the variance unbiased: m/(m-1)
    running_mean.lerp_(mu.to(running_mean.dtype), momentum)
    running_var.lerp_((var * (m / (m - 1))).to(running_var.dtype), momentum)


def layer_norm_equations(
    x: torch.Tensor,
    normalized_shape: tuple[int, ...],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Layer normalisation of `x` over its last `len(normalized_shape)` dimensions, as written.

    `layer_norm` computes the same values with the backward written out.
    """
    dims = tuple(range(-len(normalized_shape), 0))  # the H values normalised together
    # mu = (1/H) sum_j x_j
    mu = x.mean(dim=dims, keepdim=True)
    xc = x - mu
    # sigma^2 = (1/H) sum_j (x_j - mu)^2   (biased)
    var = xc.square().mean(dim=dims, keepdim=True)
    # x_hat = (x - mu) / sqrt(sigma^2 + eps)
    y = xc * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight  # gamma_j
    if bias is not None:
        y = y + bias  # beta_j
    return y


# --------------------------------------------------------------------------- the layers


class _BatchNorm(nn.Module):
    """Shared code of BatchNorm1d/2d; subclasses say which input ranks they accept."""

    _ranks: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
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
            raise ValueError(f"{type(self).__name__} expects a {ranks} input (batch first), got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) got {x.shape[1]} channels "
                f"in input of shape {tuple(x.shape)}"
            )
        alpha = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average: alpha_t = 1 / t
                alpha = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or not self.track_running_stats
        return batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=alpha,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (B, C) or (B, C, L) inputs, one mean/variance per channel C."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (B, C, H, W) inputs, one mean/variance per channel C."""

    _ranks = (4,)


class LayerNorm(nn.Module):
    """Layer normalisation over the trailing `normalized_shape` dimensions of each example."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...] | list[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        normalized_shape = tuple(int(d) for d in normalized_shape)
        if not normalized_shape or any(d < 1 for d in normalized_shape):
            raise ValueError(
                f"normalized_shape must be a positive int or a non-empty tuple of positive ints, got {normalized_shape}"
            )
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
            raise ValueError(
                f"LayerNorm expects input whose last dimensions are {self.normalized_shape}, got shape {tuple(x.shape)}"
            )
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


# --------------------------------------------------------------------------- fast path
# The same values as the equations, with the closed-form backward written out. Autograd through the
# equations keeps every intermediate and runs about a dozen full-size kernels backward; these keep x,
# mu and r = 1/sqrt(sigma^2 + eps), and forward and backward each write one full-size tensor, as torch's
# fused kernels do.


class _BatchNormTrain(torch.autograd.Function):
    r"""Training-mode batch normalisation of x (B, C, L) with its closed-form backward.

    With $g = \partial\ell/\partial y$, $r_c = 1/\sqrt{\sigma_c^2+\epsilon}$ and sums over the m values
    of channel c:

    $$\frac{\partial\ell}{\partial\beta_c} = \sum_i g_{ic}, \qquad
      \frac{\partial\ell}{\partial\gamma_c} = \sum_i g_{ic}\,\hat x_{ic}, \qquad
      \frac{\partial\ell}{\partial x_{ic}} = \gamma_c r_c
      \Bigl(g_{ic} - \frac1m\sum_j g_{jc} - \hat x_{ic}\,\frac1m\sum_j g_{jc}\,\hat x_{jc}\Bigr)$$

    (the chain rule from $\partial\ell/\partial\hat x = \gamma g$ through $\mu$ and $\sigma^2$, section 3
    of the paper). Forward and backward each write one (B, C, L) tensor (plus the forward's square,
    freed at once). Returns y and the batch's $\mu_c, \sigma_c^2$ (C,), for the running statistics.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        m = x.shape[0] * x.shape[2]  # values per channel
        # mu_c = (1/m) sum_i x_ic
        mu = x.mean(dim=(0, 2))  # (C,)
        y = x - mu[:, None]  # x_ic - mu_c: the (B, C, L) buffer that becomes y in place
        # sigma_c^2 = (1/m) sum_i (x_ic - mu_c)^2   (biased: used to normalise)
        var = y.square().sum(dim=(0, 2)).div_(m)  # (C,)
        rstd = (var + eps).rsqrt_()  # r_c = 1 / sqrt(sigma_c^2 + eps), (C,)
        # y = gamma x_hat + beta = (x - mu) (gamma r) + beta
        y.mul_((rstd if weight is None else weight * rstd)[:, None])
        if bias is not None:
            y.add_(bias[:, None])
        ctx.save_for_backward(x, weight, bias, mu, rstd)
        ctx.eps = eps
        ctx.mark_non_differentiable(mu, var)
        return y, mu, var

    @staticmethod
    def backward(ctx, g, _gmu, _gvar):
        x, weight, bias, mu, rstd = ctx.saved_tensors
        if create_graph():  # a gradient to differentiate again: autograd of the equations instead
            eqs = lambda x, w, b: batch_norm_equations(x, None, None, w, b, eps=ctx.eps)  # noqa: E731
            return (*grads_through(eqs, (x, weight, bias), ctx.needs_input_grad[:3], g), None)
        m = x.shape[0] * x.shape[2]
        # g_ic x_hat_ic = g_ic (x_ic - mu_c) r_c: the one (B, C, L) buffer, reused for dx
        buf = (x - mu[:, None]).mul_(rstd[:, None]).mul_(g)
        # dl/dgamma_c = sum_i g_ic x_hat_ic ;  dl/dbeta_c = sum_i g_ic
        gx_sum = buf.sum(dim=(0, 2))  # (C,)
        g_sum = g.sum(dim=(0, 2))  # (C,)
        dw = gx_sum if ctx.needs_input_grad[1] else None
        db = g_sum if ctx.needs_input_grad[2] else None
        if not ctx.needs_input_grad[0]:
            return None, dw, db, None
        # dl/dx_ic = gamma_c r_c (g_ic + p_c x_ic + q_c),  with x_hat_ic = (x_ic - mu_c) r_c:
        # p_c = -r_c (1/m) sum_j g_jc x_hat_jc,  q_c = -p_c mu_c - (1/m) sum_j g_jc
        p = rstd * gx_sum / -m  # (C,)
        q = -p * mu - g_sum / m  # (C,)
        dx = torch.mul(x, p[:, None], out=buf).add_(q[:, None]).add_(g)
        dx.mul_((rstd if weight is None else weight * rstd)[:, None])
        return dx, dw, db, None


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Batch normalisation of `x` (B, C, *) (`batch_norm_equations`, same arguments), run by default.

    Training mode normalises through `_BatchNormTrain`; evaluation mode, and everything under
    `torch.func` transforms, is the equations.
    """
    if not (training or running_mean is None or running_var is None) or transforms_active():
        return batch_norm_equations(x, running_mean, running_var, weight, bias, training, momentum, eps)
    m = _values_per_channel(x, training)
    x3 = x.reshape(x.shape[0], x.shape[1], -1)  # (B, C, L): every position of a channel along dims 0 and 2
    y, mu, var = _BatchNormTrain.apply(x3, weight, bias, eps)
    if training and running_mean is not None and running_var is not None:
        _update_running_stats(running_mean, running_var, mu, var, m, momentum)
    return y.view(x.shape)


class _LayerNormRows(torch.autograd.Function):
    r"""Layer normalisation of each row of x (M, H) with its closed-form backward.

    With $g = \partial\ell/\partial y$ and sums over the H values of a row,

    $$\frac{\partial\ell}{\partial\beta_j} = \sum_{rows} g_j, \qquad
      \frac{\partial\ell}{\partial\gamma_j} = \sum_{rows} g_j\,\hat x_j, \qquad
      \frac{\partial\ell}{\partial x_j} = r\,\bigl(\gamma_j g_j - a - \hat x_j\,c\bigr), \quad
      a = \frac1H\sum_k \gamma_k g_k, \quad c = \frac1H\sum_k \gamma_k g_k\,\hat x_k$$

    with $r = 1/\sqrt{\sigma^2+\epsilon}$: the chain rule from $\partial\ell/\partial\hat x = \gamma g$ through
    $\mu$ and $\sigma^2$ (batch normalisation's, across a row instead of down a channel). Forward and
    backward each write one (M, H) tensor.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        H = x.shape[1]
        # mu = (1/H) sum_j x_j
        mu = x.mean(dim=1, keepdim=True)  # (M, 1)
        y = x - mu  # x_j - mu: the one (M, H) buffer, turned into x_hat and then y in place
        # sigma^2 = (1/H) sum_j (x_j - mu)^2 = ||x - mu||^2 / H   (biased), without an (M, H) square
        var = torch.linalg.vector_norm(y, dim=1, keepdim=True).square_().div_(H)  # (M, 1)
        rstd = (var + eps).rsqrt_()  # r = 1 / sqrt(sigma^2 + eps), (M, 1)
        # x_hat = (x - mu) r
        y.mul_(rstd)
        # y = gamma x_hat + beta
        if weight is not None and bias is not None:
            torch.addcmul(bias, y, weight, out=y)
        elif weight is not None:
            y.mul_(weight)
        elif bias is not None:
            y.add_(bias)
        ctx.save_for_backward(x, weight, bias, mu, rstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight, bias, mu, rstd = ctx.saved_tensors
        if create_graph():  # a gradient to differentiate again: autograd of the equations instead
            eqs = lambda x, w, b: layer_norm_equations(x, x.shape[1:], w, b, ctx.eps)  # noqa: E731
            return (*grads_through(eqs, (x, weight, bias), ctx.needs_input_grad[:3], g), None)
        H = x.shape[1]
        # g_j (x_j - mu) = g_j x_hat_j / r: the one (M, H) buffer, reused for dx
        buf = (x - mu).mul_(g)
        # dl/dgamma_j = sum_rows r g_j (x_j - mu) (a vector-matrix product) ;  dl/dbeta_j = sum_rows g_j
        dw = rstd.view(-1) @ buf if ctx.needs_input_grad[1] else None
        db = g.sum(dim=0) if ctx.needs_input_grad[2] else None
        if not ctx.needs_input_grad[0]:
            return None, dw, db, None
        # a = (1/H) sum_k gamma_k g_k ;  c = (1/H) sum_k gamma_k g_k x_hat_k   (matrix-vector products)
        if weight is None:
            a, c = g.mean(dim=1, keepdim=True), buf.mean(dim=1, keepdim=True).mul_(rstd)  # (M, 1)
        else:
            w = weight.to(g.dtype)  # a matrix-vector product needs one dtype (float32 gamma, float64 x)
            a, c = (g @ w).div_(H)[:, None], (buf @ w).div_(H)[:, None].mul_(rstd)  # (M, 1)
        # dl/dx_j = r (gamma_j g_j - a - x_hat_j c) = r (gamma_j g_j + p x_j + q),  x_hat_j = (x_j - mu) r,
        # p = -r c,  q = r c mu - a
        p = -rstd * c
        q = rstd * c * mu - a
        dx = torch.mul(x, p, out=buf).add_(q)  # p x_j + q (an addcmul with (M, 1) factors is slower)
        if weight is None:
            dx.add_(g)
        else:
            dx.addcmul_(g, weight)
        return dx.mul_(rstd), dw, db, None


def layer_norm(
    x: torch.Tensor,
    normalized_shape: tuple[int, ...],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Layer normalisation of `x` over its last `len(normalized_shape)` dimensions (`layer_norm_equations`),
    run by default: through `_LayerNormRows` on rows (M, H), or under `torch.func` transforms the equations."""
    if transforms_active():
        return layer_norm_equations(x, normalized_shape, weight, bias, eps)
    H = math.prod(normalized_shape)  # values normalised together
    rows = x.reshape(-1, H)  # (M, H): one row per normalised group
    w = None if weight is None else weight.reshape(H)
    b = None if bias is None else bias.reshape(H)
    return _LayerNormRows.apply(rows, w, b, eps).view(x.shape)


declare(
    batch_norm_equations,
    batch_norm,
    _BatchNormTrain,
    saves="In training mode, one (B, C, L) tensor written forward and one backward, keeping only x, mu and "
    "1/sqrt(sigma^2 + eps); autograd of the equations keeps every intermediate and runs about a dozen "
    "full-size kernels backward. Evaluation mode runs the equations.",
)
declare(
    layer_norm_equations,
    layer_norm,
    _LayerNormRows,
    saves="One (M, H) tensor written forward and one backward, keeping only x, mu and 1/sqrt(sigma^2 + eps), "
    "where autograd of the equations keeps every intermediate and runs about a dozen full-size kernels.",
)
