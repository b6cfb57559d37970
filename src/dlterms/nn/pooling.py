r"""Pooling: max and average over sliding windows (1-D, 2-D) and over the whole map (global).

A pooling layer summarises each window of a feature map by one number, per channel, with no
learned weights (LeCun et al., 1998; max pooling as in Ranzato et al., 2007). For channel $c$ and
output position $i$, with window $\mathcal{W}(i) = \{ s\,i + d\,m - p : m = 0..k-1 \}$ (stride $s$,
dilation $d$, padding $p$, per spatial dimension),

$$\text{max:}\quad y[b, c, i] = \max_{u \in \mathcal{W}(i)} x[b, c, u] \qquad
\text{average:}\quad y[b, c, i] = \frac{1}{|\mathcal{W}(i)|} \sum_{u \in \mathcal{W}(i)} x[b, c, u]$$

Max pooling pads with $-\infty$ (padding never wins); average pooling pads with zeros and divides
by the full window size $k$ (`count_include_pad=True`, PyTorch's default) or by the number of real
positions in the window. The output size is the same as a convolution's,
$\lfloor (n + 2p - d(k-1) - 1)/s \rfloor + 1$; the stride defaults to the kernel size, so windows
tile the input. Global pooling takes the window to be the whole map: $y[b, c] = \max_u x[b, c, u]$
or $\frac{1}{HW}\sum_u x[b, c, u]$, turning any spatial size into one vector per image.

Gradients: average pooling spreads $\partial L/\partial y$ evenly over its window; max pooling
sends it only to the position that held the maximum.

The equations of max pooling (`max_pool_equations`) gather every window by the same im2col as
convolution (`dlterms.nn.conv.sliding_windows`) and take its maximum, which autograd differentiates.
What runs by default (`_RunningMax`) computes the same values without copying the windows: a running
maximum over the kernel offsets, one strided slice of the input per offset, with the backward
written out (the gradient goes to the first offset, in row-major window order, that holds the
maximum: where `torch.max` and `torch.nn.functional.max_pool2d` send it on ties).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from dlterms.nn._fastpath import create_graph, declare, grads_through, transforms_active
from dlterms.nn.conv import _padded_windows, _tuple, _window_slices, conv_output_size, sliding_windows

__all__ = [
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "GlobalMaxPool",
    "GlobalAvgPool",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "max_pool_equations",
]


def _check(x: torch.Tensor, nd: int, kernel_size, stride, padding, dilation):
    if x.dim() != nd + 2:
        names = "(B, C, L)" if nd == 1 else "(B, C, H, W)"
        raise ValueError(f"expected a {nd + 2}-D input {names}, got shape {tuple(x.shape)}")
    k = _tuple(kernel_size, nd, "kernel_size")
    s = k if stride is None else _tuple(stride, nd, "stride")
    p = _tuple(padding, nd, "padding")
    d = _tuple(dilation, nd, "dilation")
    if min(k) < 1 or min(s) < 1 or min(d) < 1:
        raise ValueError(f"kernel_size, stride and dilation must be >= 1, got {k}, {s}, {d}")
    for pi, ki in zip(p, k):
        if not 0 <= pi <= ki // 2:
            raise ValueError(
                f"padding must be in [0, kernel_size // 2] so every window holds a real input, "
                f"got padding={p} for kernel_size={k}"
            )
    return k, s, p, d


def _stacked_windows(xp: torch.Tensor, kernel, stride, dilation, out, first: int) -> torch.Tensor:
    """The kernel offsets' strided slices of a padded xp, spatial dims from `first` on, stacked in
    row-major offset order at dim `first`: (..., prod(k), *out, ...)."""
    lead = (slice(None),) * first
    return torch.stack(
        [xp[(*lead, *_window_slices(m, out, stride, dilation))] for m in itertools.product(*map(range, kernel))],
        dim=first,
    )


def max_pool_equations(x, kernel_size, stride=None, padding=0, dilation=1) -> torch.Tensor:
    """Max pooling as written, $y[b, c, i] = \\max_{u \\in W(i)} x[b, c, u]$, for x (B, C, L) or
    (B, C, H, W): the input padded with -inf, every window's values stacked and their maximum taken.
    Autograd sends the gradient to the arg-max `torch.max` returns (the first, in row-major window
    order, on ties). Plain tensor operations, so it also runs under `torch.func` transforms;
    `max_pool1d`/`max_pool2d` compute the same by a running maximum (below)."""
    nd = x.dim() - 2
    if nd not in (1, 2):
        raise ValueError(f"expected input of shape (B, C, L) or (B, C, H, W), got {tuple(x.shape)}")
    k, s, p, d = _check(x, nd, kernel_size, stride, padding, dilation)
    out = [conv_output_size(x.shape[2 + i], k[i], s[i], p[i], d[i]) for i in range(nd)]
    xp = torch.nn.functional.pad(x, [q for pi in reversed(p) for q in (pi, pi)], value=float("-inf"))
    win = _stacked_windows(xp, k, s, d, out, first=2)  # (B, C, prod(k), *out): x~[b, c, s*i + d*m]
    return win.max(dim=2).values  # max over the window; the gradient flows to the arg-max only


def _running_max_equations(xp: torch.Tensor, kernel, stride, dilation, out) -> torch.Tensor:
    """The windows' maxima of a padded channels-last xp (B, *padded, C), for autograd: (B, *out, C)
    (what `_RunningMax` differentiates under create_graph=True)."""
    return _stacked_windows(xp, kernel, stride, dilation, out, first=1).max(dim=1).values


class _RunningMax(torch.autograd.Function):
    r"""Max pooling without gathering the windows: $y = \max_m \tilde x[s\,i + d\,m]$ as a running
    `torch.maximum` over the kernel offsets m, each a strided slice of the padded channels-last input.

    Backward: $\partial\ell/\partial\tilde x[s\,i + d\,m] \mathrel{+}= \partial\ell/\partial y[i]$
    for the first offset m (row-major) whose slice equals $y[i]$ (or is NaN, which `torch.maximum`
    propagates), so ties go where `torch.max` sends them. Saves the input and the output only; the
    gathered windows (prod(k) times the output) are never built.
    """

    @staticmethod
    def forward(ctx, xp, kernel, stride, dilation, out):
        offsets = list(itertools.product(*(range(k) for k in kernel)))
        lead = (slice(None),)
        y = None
        for m in offsets:
            v = xp[(*lead, *_window_slices(m, out, stride, dilation))]  # x~[b, s*i + d*m, c]: (B, *out, C)
            y = v.clone() if y is None else torch.maximum(y, v, out=y)
        ctx.save_for_backward(xp, y)
        ctx.geometry = (kernel, stride, dilation, out)
        return y

    @staticmethod
    def backward(ctx, gy):
        xp, y = ctx.saved_tensors
        kernel, stride, dilation, out = ctx.geometry
        if create_graph():  # a gradient to differentiate again: autograd of the gathered windows instead
            eqs = lambda xp: _running_max_equations(xp, kernel, stride, dilation, out)  # noqa: E731
            return (*grads_through(eqs, (xp,), ctx.needs_input_grad[:1], gy), None, None, None, None)
        gx = torch.zeros_like(xp)
        nan = bool(y.isnan().any())  # a NaN maximum equals nothing: then the first NaN gets the gradient
        offsets = list(itertools.product(*(range(k) for k in kernel)))
        free = None  # outputs whose gradient is not sent yet (None: all of them)
        for j, m in enumerate(offsets):
            sl = (slice(None), *_window_slices(m, out, stride, dilation))
            if j == len(offsets) - 1 and free is not None and not nan:
                hit = free  # every window holds its maximum somewhere: what is left is at the last offset
            else:
                v = xp[sl]
                hit = (v == y) | v.isnan() if nan else v == y  # offset m holds the maximum
                if free is not None:
                    hit &= free  # ... and no earlier offset did
            free = ~hit if free is None else free ^ hit
            gx[sl] += gy * hit
        return gx, None, None, None, None


def _max_pool(x, nd, kernel_size, stride, padding, dilation):
    if transforms_active():  # torch.func: the autograd.Function defines no rules
        return max_pool_equations(x, kernel_size, stride, padding, dilation)
    k, s, p, d = _check(x, nd, kernel_size, stride, padding, dilation)
    xp, k, s, d, out = _padded_windows(x, k, s, p, d, float("-inf"))  # (B, *padded, C), channels-last
    y = _RunningMax.apply(xp, k, s, d, out)  # (B, *out, C)
    return y.movedim(-1, 1)  # (B, C, *out), a channels-first view


def _avg_pool(x, nd, kernel_size, stride, padding, count_include_pad):
    k, s, p, d = _check(x, nd, kernel_size, stride, padding, 1)
    win = sliding_windows(x, k, s, p, d)  # (B, *out, *k, C), zero-padded
    b, c = x.shape[:2]
    out = win.shape[1 : 1 + nd]
    total = win.reshape(b, *out, -1, c).sum(dim=-2)  # (B, *out, C)
    if count_include_pad or not any(p):
        y = total / math.prod(k)  # divide by |W| = prod(k)
    else:
        # count the real (unpadded) positions in each window: pool a map of ones
        ones = x.new_ones(1, 1, *x.shape[2:])
        count = sliding_windows(ones, k, s, p, d).reshape(1, *out, -1, 1).sum(dim=-2)  # (1, *out, 1)
        y = total / count
    return y.movedim(-1, 1)  # (B, C, *out)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1) -> torch.Tensor:
    """Max over windows of (B, C, L)."""
    return _max_pool(x, 1, kernel_size, stride, padding, dilation)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1) -> torch.Tensor:
    """Max over windows of (B, C, H, W)."""
    return _max_pool(x, 2, kernel_size, stride, padding, dilation)


def avg_pool1d(x, kernel_size, stride=None, padding=0, count_include_pad=True) -> torch.Tensor:
    """Mean over windows of (B, C, L)."""
    return _avg_pool(x, 1, kernel_size, stride, padding, count_include_pad)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True) -> torch.Tensor:
    """Mean over windows of (B, C, H, W)."""
    return _avg_pool(x, 2, kernel_size, stride, padding, count_include_pad)


class _Pool(nn.Module):
    _nd = 0

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _tuple(kernel_size, self._nd, "kernel_size")
        self.stride = self.kernel_size if stride is None else _tuple(stride, self._nd, "stride")
        self.padding = _tuple(padding, self._nd, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"kernel_size and stride must be >= 1, got {self.kernel_size}, {self.stride}")
        for pi, ki in zip(self.padding, self.kernel_size):
            if not 0 <= pi <= ki // 2:
                raise ValueError(
                    f"padding must be in [0, kernel_size // 2], got padding={self.padding} "
                    f"for kernel_size={self.kernel_size}"
                )

    def output_size(self, *spatial: int) -> tuple[int, ...]:
        """Output spatial size for an input of the given spatial size."""
        if len(spatial) != self._nd:
            raise ValueError(f"give {self._nd} spatial sizes, got {spatial}")
        d = getattr(self, "dilation", (1,) * self._nd)
        return tuple(
            (n + 2 * p - di * (k - 1) - 1) // s + 1
            for n, p, k, s, di in zip(spatial, self.padding, self.kernel_size, self.stride, d)
        )

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _MaxPool(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__(kernel_size, stride, padding)
        self.dilation = _tuple(dilation, self._nd, "dilation")
        if min(self.dilation) < 1:
            raise ValueError(f"dilation must be >= 1, got {dilation}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _max_pool(x, self._nd, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={self.dilation}"


class _AvgPool(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _avg_pool(x, self._nd, self.kernel_size, self.stride, self.padding, self.count_include_pad)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", count_include_pad={self.count_include_pad}"


class MaxPool1d(_MaxPool):
    """Max pooling over (B, C, L); arguments as `torch.nn.MaxPool1d` (no ceil_mode)."""

    _nd = 1


class MaxPool2d(_MaxPool):
    """Max pooling over (B, C, H, W); arguments as `torch.nn.MaxPool2d` (no ceil_mode)."""

    _nd = 2


class AvgPool1d(_AvgPool):
    """Average pooling over (B, C, L); arguments as `torch.nn.AvgPool1d` (no ceil_mode)."""

    _nd = 1


class AvgPool2d(_AvgPool):
    """Average pooling over (B, C, H, W); arguments as `torch.nn.AvgPool2d` (no ceil_mode)."""

    _nd = 2


class _GlobalPool(nn.Module):
    def __init__(self, flatten: bool = True):
        super().__init__()
        self.flatten = flatten

    def _reduce(self, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"expected (B, C, *spatial) with at least one spatial dim, got shape {tuple(x.shape)}")
        dims = tuple(range(2, x.dim()))
        y = self._reduce(x, dims)  # (B, C)
        return y if self.flatten else y.view(*y.shape, *(1,) * len(dims))

    def extra_repr(self) -> str:
        return f"flatten={self.flatten}"


class GlobalAvgPool(_GlobalPool):
    """Mean over every spatial position: (B, C, *spatial) -> (B, C), or (B, C, 1, ...) with
    `flatten=False` (then equal to `torch.nn.AdaptiveAvgPool2d(1)` on images)."""

    def _reduce(self, x, dims):
        return x.sum(dim=dims) / x[0, 0].numel()  # (1/HW) sum_u x[b, c, u]


class GlobalMaxPool(_GlobalPool):
    """Max over every spatial position: (B, C, *spatial) -> (B, C) (or keep dims with `flatten=False`)."""

    def _reduce(self, x, dims):
        return x.flatten(2).max(dim=-1).values  # max_u x[b, c, u]


declare(
    max_pool_equations,
    max_pool2d,
    _max_pool,
    _RunningMax,
    saves="A running maximum over the kernel offsets, one strided slice of the input each, instead of "
    "copying every window (prod(k) times the output) and reducing it; the backward sends each output's "
    "gradient to the first offset holding its maximum, without building the windows' gradient.",
)
