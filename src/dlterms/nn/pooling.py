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

Windows are gathered by the same im2col as convolution (`dlterms.nn.conv.sliding_windows`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlterms.nn.conv import _tuple, sliding_windows

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


def _max_pool(x, nd, kernel_size, stride, padding, dilation):
    k, s, p, d = _check(x, nd, kernel_size, stride, padding, dilation)
    win = sliding_windows(x, k, s, p, d, pad_value=float("-inf"))  # (B, *out, *k, C)
    b, c = x.shape[:2]
    out = win.shape[1 : 1 + nd]
    win = win.reshape(b, *out, -1, c)  # (B, *out, prod(k), C)
    y = win.max(dim=-2).values  # max over the window; the gradient flows to the arg-max only
    return y.movedim(-1, 1)  # (B, C, *out)


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
