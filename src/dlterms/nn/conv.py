r"""Convolution, 1-D and 2-D, written as im2col followed by one matrix multiplication.

A convolutional layer (LeCun et al., 1989; as computed by every deep-learning library, which is
strictly a *cross-correlation*: the kernel is not flipped) maps an input
$x \in \mathbb{R}^{B \times C_{in} \times H \times W}$ to

$$y[b, o, i, j] = \beta_o + \sum_{c \in G(o)} \sum_{m=0}^{k_h-1} \sum_{n=0}^{k_w-1}
    w[o, c, m, n]\; \tilde{x}[b, c,\; s_h i + d_h m,\; s_w j + d_w n]$$

where $\tilde{x}$ is $x$ zero-padded by $p$ on each side, $s$ is the stride, $d$ the dilation, and
$G(o)$ the $C_{in}/g$ input channels of output channel $o$'s group when the channels are split into
$g$ groups. Each output position sees a window of $k_h \times k_w$ positions spaced $d$ apart.
The output length along a dimension of input length $n$ is

$$n_{out} = \left\lfloor \frac{n + 2p - d(k - 1) - 1}{s} \right\rfloor + 1 .$$

im2col (Chellapilla et al., 2006, "High Performance Convolutional Neural Networks for Document
Processing") turns the sum into one matrix product: copy every window into a row of a matrix
$X_{col} \in \mathbb{R}^{(B\,n_{out}) \times (k\,C_{in})}$ and multiply by the kernels laid out as
$W \in \mathbb{R}^{(k\,C_{in}) \times C_{out}}$: $Y = X_{col} W + \beta$. The backward pass of im2col
(col2im) adds each window's gradient back onto the positions it was copied from. The layer's backward
is written out from $Y = X_{col} W + \beta$ (`_ConvGemm`), and $X_{col}$ is built a few MiB of the batch
at a time, so it is multiplied while it is still in cache and never held whole.

The file reads in that order: the sum as written (`conv_equations`, which autograd differentiates),
then im2col and the fast path that runs by default (`conv1d`, `conv2d`), tested equal to the sum.

Layout: the public tensors are batch first and channels first, (B, C, L) and (B, C, H, W), with
PyTorch's parameter names and shapes (`weight` (C_out, C_in/groups, *kernel_size), `bias` (C_out,)),
so a state dict loads into `torch.nn.Conv2d` and back. Inside, windows are gathered channels-last,
(B, *out, *kernel, C), because then each copied run of memory is a whole channel vector; the output
is returned as a channels-first *view* of a channels-last tensor, so the next layer's permute is free.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from dlterms.nn._fastpath import create_graph, declare, grads_through, transforms_active

__all__ = [
    "conv_equations",
    "Conv1d",
    "Conv2d",
    "conv1d",
    "conv2d",
    "conv_output_size",
    "im2col",
    "sliding_windows",
    "receptive_field",
]


def _tuple(value, n: int, name: str) -> tuple[int, ...]:
    """An int or a length-n sequence of ints as an n-tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, Sequence) and len(value) == n and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    r"""$\lfloor (n + 2p - d(k-1) - 1) / s \rfloor + 1$: output length of a convolution or pooling window.

    Raises ValueError when the (dilated) kernel does not fit in the padded input.
    """
    for name, v, low in (
        ("n", n, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
    ):
        if not isinstance(v, int) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    span = dilation * (kernel_size - 1) + 1  # extent of the dilated kernel
    if n + 2 * padding < span:
        raise ValueError(
            f"the kernel spans {span} positions (kernel_size={kernel_size}, "
            f"dilation={dilation}) "
            f"but the padded input has only {n + 2 * padding} (n={n}, padding={padding})"
        )
    return (n + 2 * padding - span) // stride + 1


def receptive_field(
    kernel_sizes: Sequence[int], dilations: Sequence[int] | None = None, strides: Sequence[int] | None = None
) -> int:
    r"""Input positions one output of a stack of convolutions depends on (along one dimension).

    $$r = 1 + \sum_\ell d_\ell (k_\ell - 1) \prod_{j < \ell} s_j$$

    e.g. four 3-wide layers: 9 positions with dilations 1, 1, 1, 1 and 31 with 1, 2, 4, 8 (Yu &
    Koltun, 2016, "Multi-Scale Context Aggregation by Dilated Convolutions").
    """
    n = len(kernel_sizes)
    dilations = [1] * n if dilations is None else list(dilations)
    strides = [1] * n if strides is None else list(strides)
    if len(dilations) != n or len(strides) != n:
        raise ValueError(
            f"give one dilation and stride per layer: {n} kernel sizes, {len(dilations)} "
            f"dilations, {len(strides)} strides"
        )
    r, jump = 1, 1  # jump: input distance between neighbouring outputs of the layers so far
    for k, d, s in zip(kernel_sizes, dilations, strides):
        if min(k, d, s) < 1:
            raise ValueError(f"kernel sizes, dilations and strides must be >= 1, got {k}, {d}, {s}")
        r += d * (k - 1) * jump  # each layer widens the field by its dilated span, in input units
        jump *= s
    return r


# --------------------------------------------------------------------------- the equations


def conv_equations(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0, dilation=1, groups=1
) -> torch.Tensor:
    r"""Convolution as the sum is written, $y[b, o, i] = \beta_o + \sum_{c \in G(o)} \sum_m w[o, c, m]\,
    \tilde x[b, c, s i + d m]$, for x (B, C_in, L) or (B, C_in, H, W) and weight (C_out, C_in/groups, *k).

    One term of the sum over kernel offsets m at a time: the input positions $s i + d m$ that offset
    reads (a strided slice of the zero-padded input), times that offset's weights, summed over the
    group's input channels. Built from differentiable operations, so autograd gives every gradient;
    `conv1d`/`conv2d` compute the same values by im2col and one matrix product (below). `padding` is
    an int or one int per spatial dimension.
    """
    nd = x.dim() - 2
    if nd not in (1, 2) or weight.dim() != nd + 2:
        raise ValueError(f"expected x (B, C, L) or (B, C, H, W) and a weight of the same rank, got {tuple(x.shape)}")
    s, d, p = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation"), _tuple(padding, nd, "padding")
    kernel = tuple(weight.shape[2:])
    B, C_in = x.shape[:2]
    C_out, C_g = weight.shape[:2]
    if C_in != C_g * groups or C_out % groups:
        raise ValueError(f"{C_in} input channels, weight {tuple(weight.shape)} and groups={groups} do not match")
    out = [conv_output_size(x.shape[2 + k], kernel[k], s[k], p[k], d[k]) for k in range(nd)]
    # x~: x zero-padded by p on each side of every spatial dimension
    xt = torch.nn.functional.pad(x, [q for k in reversed(range(nd)) for q in (p[k], p[k])])
    xg = xt.view(B, groups, C_g, *xt.shape[2:])  # (B, g, C_g, *padded): the groups G(o)
    wg = weight.view(groups, C_out // groups, C_g, *kernel)  # (g, O_g, C_g, *k)
    y = x.new_zeros(B, groups, C_out // groups, *out)
    for m in itertools.product(*(range(k) for k in kernel)):
        # x~[b, c, s i + d m] for every output position i: (B, g, C_g, *out)
        window = xg[(Ellipsis, *_window_slices(m, out, s, d))]
        # sum_c w[o, c, m] x~[b, c, s i + d m]
        term = "bgc" + "ij"[:nd] + ",goc->bgo" + "ij"[:nd]
        y = y + torch.einsum(term, window, wg[(Ellipsis, *m)])
    y = y.reshape(B, C_out, *out)
    if bias is not None:
        y = y + bias.view(1, C_out, *([1] * nd))  # + beta_o
    return y


# --------------------------------------------------------------------------- im2col and the fast path
# The sum above makes one small product per kernel offset and autograd keeps every window. The fast
# path copies all windows into one matrix X_col (im2col) and makes one matrix product, Y = X_col W + beta,
# with its backward written out: X_col is built a batch chunk of a few MiB at a time, multiplied while
# in cache and rebuilt in the backward instead of kept.


def _pad_channels_last(x: torch.Tensor, pads: Sequence[tuple[int, int]], value: float) -> torch.Tensor:
    """Pad the spatial dims of a channels-last (B, *spatial, C) tensor by (before, after) each."""
    if not any(a or b for a, b in pads):
        return x.contiguous()
    shape = [x.shape[0]] + [s + a + b for s, (a, b) in zip(x.shape[1:-1], pads)] + [x.shape[-1]]
    out = x.new_full(shape, value)
    inner = (slice(None),) + tuple(slice(a, a + s) for s, (a, _) in zip(x.shape[1:-1], pads))
    out[inner] = x
    return out


def _window_slices(
    offset: Sequence[int], out: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[slice, ...]:
    """The input positions d*m + s*i (i = 0..out-1) that kernel offset m reads, one slice per dim."""
    return tuple(slice(d * m, d * m + s * (o - 1) + 1, s) for m, o, s, d in zip(offset, out, stride, dilation))


class _Im2col(torch.autograd.Function):
    """im2col on a channels-last padded input: (B, *spatial, C) -> (B, *out, *kernel, C), a copy.

    Forward is a strided view of the input copied into contiguous memory. Backward is col2im: each
    kernel offset's slab of gradients is added back onto the input positions it was read from.
    """

    @staticmethod
    def forward(ctx, xp, kernel, stride, dilation, out):
        ctx.meta = (xp.shape, kernel, stride, dilation, out)
        return _window_view(xp, kernel, stride, dilation, out).contiguous()  # (B, *out, *kernel, C)

    @staticmethod
    def backward(ctx, grad):
        shape, kernel, stride, dilation, out = ctx.meta
        gx = grad.new_zeros(shape)  # (B, *spatial, C)
        _col2im_add(gx, grad, kernel, stride, dilation, out)
        return gx, None, None, None, None


def _window_view(xp: torch.Tensor, kernel, stride, dilation, out) -> torch.Tensor:
    """Every window of a channels-last padded (B, *spatial, C) tensor as a strided view, no copy:
    (B, *out, *kernel, C)."""
    nd = len(kernel)
    sizes = (xp.shape[0], *out, *kernel, xp.shape[-1])
    st = xp.stride()
    # window (i, m) reads position s*i + d*m: stride s*st along i, d*st along m
    strides = (
        st[0],
        *(s * st[1 + k] for k, s in enumerate(stride)),
        *(d * st[1 + k] for k, d in enumerate(dilation)),
        st[nd + 1],
    )
    return xp.as_strided(sizes, strides)


def _col2im_add(gx: torch.Tensor, grad: torch.Tensor, kernel, stride, dilation, out) -> None:
    """col2im: add window gradients grad (B, *out, *kernel, C) onto gx (B, *spatial, C), in place."""
    nd = len(kernel)
    for offset in itertools.product(*(range(k) for k in kernel)):
        sl = _window_slices(offset, out, stride, dilation)
        # x~[b, s*i + d*m, c] += dX_col[b, i, m, c]
        gx[(slice(None), *sl)] += grad[(slice(None),) * (nd + 1) + offset]


_CHUNK_BYTES = 1 << 22  # X_col is built in batch chunks of about 4 MiB: still in cache for its matmuls


def _conv_gemm_equations(
    xp: torch.Tensor, w2: torch.Tensor, bias: torch.Tensor | None, kernel, stride, dilation, out
) -> torch.Tensor:
    """Y = X_col W + beta over the whole batch at once, for autograd: (B, *out, C_out) (what `_ConvGemm`
    differentiates under create_graph=True)."""
    cols = _Im2col.apply(xp, kernel, stride, dilation, out)  # (B, *out, *k, C_in)
    y = cols.reshape(-1, w2.shape[1]) @ w2.t()  # (B*prod(out), prod(k)*C_in) @ (prod(k)*C_in, C_out)
    if bias is not None:
        y = y + bias  # + beta_o
    return y.view(xp.shape[0], *out, w2.shape[0])


class _ConvGemm(torch.autograd.Function):
    r"""Convolution as im2col and one matmul, a batch chunk at a time, with the backward written out.

    For $Y = X_{col} W + \beta$ (here `w2` is $W^\top$, (C_out, k C_in), the weight's own layout):

    $$\frac{\partial\ell}{\partial W} = X_{col}^\top\,\frac{\partial\ell}{\partial Y}, \qquad
      \frac{\partial\ell}{\partial X_{col}} = \frac{\partial\ell}{\partial Y}\, W^\top, \qquad
      \frac{\partial\ell}{\partial\beta} = \textstyle\sum_{rows} \frac{\partial\ell}{\partial Y}$$

    and col2im adds $\partial\ell/\partial X_{col}$ back onto the input. $X_{col}$ is k times the input,
    so past one chunk it is not kept: each chunk's is built into one reused buffer, multiplied while
    it is still in cache, and rebuilt in the backward; only the padded input is saved. A batch that
    fits in one chunk keeps its $X_{col}$ instead.
    """

    @staticmethod
    def forward(ctx, xp, w2, bias, kernel, stride, dilation, out):
        B, c_out, kc = xp.shape[0], w2.shape[0], w2.shape[1]
        chunk = max(1, _CHUNK_BYTES // (math.prod(out) * kc * xp.element_size()))  # examples per chunk
        y = xp.new_empty(B, *out, c_out)
        wt = w2.t().contiguous()  # W (k C_in, C_out)
        buf = xp.new_empty(min(chunk, B), *out, *kernel, xp.shape[-1])  # one chunk's X_col, reused
        keep = B <= chunk  # one chunk: keep X_col for the backward rather than build it twice
        for b0 in range(0, B, chunk):
            x_c = xp[b0 : b0 + chunk]
            cols = buf[: x_c.shape[0]].copy_(_window_view(x_c, kernel, stride, dilation, out)).view(-1, kc)  # X_col
            y_c = y[b0 : b0 + chunk].view(-1, c_out)  # (rows, C_out), written in place
            if bias is None:
                torch.mm(cols, wt, out=y_c)  # Y = X_col W
            else:
                torch.addmm(bias, cols, wt, out=y_c)  # Y = X_col W + beta
        ctx.save_for_backward(xp, w2, bias, buf if keep else None)
        ctx.geometry = (kernel, stride, dilation, out, chunk)
        return y

    @staticmethod
    def backward(ctx, gy):
        xp, w2, bias, kept = ctx.saved_tensors
        kernel, stride, dilation, out, chunk = ctx.geometry
        if create_graph():  # a gradient to differentiate again: autograd of the whole-batch product instead
            eqs = lambda xp, w2, b: _conv_gemm_equations(xp, w2, b, kernel, stride, dilation, out)  # noqa: E731
            return (*grads_through(eqs, (xp, w2, bias), ctx.needs_input_grad[:3], gy), None, None, None, None)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        c_out, kc = w2.shape
        gy = gy.contiguous()  # (B, *out, C_out)
        gxp = torch.zeros_like(xp) if need_x else None
        gw = torch.zeros_like(w2) if need_w else None
        buf = xp.new_empty(min(chunk, xp.shape[0]), *out, *kernel, xp.shape[-1])  # one chunk's X_col or its grad
        for b0 in range(0, xp.shape[0], chunk):
            x_c = xp[b0 : b0 + chunk]
            b_c = buf[: x_c.shape[0]]
            gy_c = gy[b0 : b0 + chunk].view(-1, c_out)  # dl/dY, (rows, C_out)
            if need_w:
                if kept is None:  # X_col, rebuilt
                    cols = b_c.copy_(_window_view(x_c, kernel, stride, dilation, out)).view(-1, kc)
                else:
                    cols = kept.view(-1, kc)
                gw.addmm_(gy_c.t(), cols)  # dl/dW^T += (dl/dY)^T X_col
            if need_x:
                torch.mm(gy_c, w2, out=b_c.view(-1, kc))  # dl/dX_col = (dl/dY) W^T
                _col2im_add(gxp[b0 : b0 + chunk], b_c, kernel, stride, dilation, out)
        gb = gy.view(-1, c_out).sum(0) if need_b else None  # dl/dbeta = sum over rows of dl/dY
        return gxp, gw, gb, None, None, None, None


def _grouped_gemm_equations(
    xp: torch.Tensor, wg: torch.Tensor, bias: torch.Tensor | None, kernel, stride, dilation, out
) -> torch.Tensor:
    """Grouped Y_g = X_col,g W_g + beta_g for autograd: xp (B, *padded, G*C_g), wg (G, O_g, k C_g) ->
    (B, *out, G*O_g) (what `_GroupedConvGemm` differentiates under create_graph=True)."""
    G, o_g, kc = wg.shape
    B = xp.shape[0]
    c_g = xp.shape[-1] // G
    cols = _Im2col.apply(xp, kernel, stride, dilation, out)  # (B, *out, *k, G*C_g)
    n, kk = B * math.prod(out), math.prod(kernel)
    xg = cols.reshape(n, kk, G, c_g).permute(2, 0, 1, 3).reshape(G, n, kk * c_g)  # (G, N, k C_g)
    y = torch.bmm(xg, wg.transpose(1, 2)).permute(1, 0, 2).reshape(n, G * o_g)  # (N, C_out)
    if bias is not None:
        y = y + bias
    return y.view(B, *out, G * o_g)


class _GroupedConvGemm(torch.autograd.Function):
    r"""A grouped convolution as im2col and one batched product over the groups, the backward written out.

    Group g's windows are copied once into its own matrix $X_{col,g}$ (N, k C_g), all groups into one
    (G, N, k C_g) buffer, and $Y_g = X_{col,g} W_g + \beta_g$ is one `baddbmm`; the backward is that of
    `_ConvGemm` per group ($\partial\ell/\partial W_g = (\partial\ell/\partial Y_g)^\top X_{col,g}$,
    $\partial\ell/\partial X_{col,g} = (\partial\ell/\partial Y_g) W_g$, then col2im), batched the same
    way. Autograd of the gathered windows would make three extra full copies of the k-times-larger
    window matrix per step (a permute into group-major order, and its gradient's way back).
    Inputs: xp (B, *padded, G*C_g) channels-last, wg (G, O_g, k C_g) (each group's kernels in the
    windows' layout), bias (G*O_g,) or None. Returns (B, *out, G*O_g).
    """

    @staticmethod
    def forward(ctx, xp, wg, bias, kernel, stride, dilation, out):
        G, o_g, kc = wg.shape
        B, c_g, nd = xp.shape[0], xp.shape[-1] // G, len(kernel)
        n = B * math.prod(out)
        win = _window_view(xp, kernel, stride, dilation, out).unflatten(-1, (G, c_g))  # (B, *out, *k, G, C_g)
        cols = xp.new_empty(G, B, *out, *kernel, c_g)  # X_col of every group, group-major
        cols.copy_(win.movedim(-2, 0))
        cols2 = cols.view(G, n, kc)
        wt = wg.transpose(1, 2).contiguous()  # (G, k C_g, O_g)
        if bias is None:
            y_g = torch.bmm(cols2, wt)
        else:
            y_g = torch.baddbmm(bias.view(G, 1, o_g), cols2, wt)  # Y_g = X_col,g W_g + beta_g: (G, N, O_g)
        y = y_g.transpose(0, 1).reshape(B, *out, G * o_g)  # (B, *out, C_out), group g's channels in block g
        ctx.save_for_backward(xp, cols, wg, bias)
        ctx.geometry = (kernel, stride, dilation, out, nd)
        return y

    @staticmethod
    def backward(ctx, gy):
        xp, cols, wg, bias = ctx.saved_tensors
        kernel, stride, dilation, out, nd = ctx.geometry
        shape = xp.shape
        if create_graph():  # a gradient to differentiate again: autograd of the gathered windows instead
            eqs = lambda xp, wg, b: _grouped_gemm_equations(xp, wg, b, kernel, stride, dilation, out)  # noqa: E731
            return (*grads_through(eqs, (xp, wg, bias), ctx.needs_input_grad[:3], gy), None, None, None, None)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        G, o_g, kc = wg.shape
        B, c_g = shape[0], shape[-1] // G
        n = B * math.prod(out)
        gy_g = gy.reshape(n, G, o_g).transpose(0, 1).contiguous()  # dl/dY_g: (G, N, O_g)
        cols2 = cols.view(G, n, kc)
        gw = torch.bmm(gy_g.transpose(1, 2), cols2) if need_w else None  # dl/dW_g = (dl/dY_g)^T X_col,g
        gb = gy_g.sum(1).reshape(-1) if (need_b and bias is not None) else None
        gxp = None
        if need_x:
            d_cols = torch.bmm(gy_g, wg).view(G, B, *out, *kernel, c_g)  # dl/dX_col,g = (dl/dY_g) W_g
            gxp = cols.new_zeros(shape)
            gx = gxp.view(*shape[:-1], G, c_g)  # (B, *padded, G, C_g)
            lead = (slice(None),) * (nd + 2)  # the group, batch and output dims of d_cols
            for offset in itertools.product(*(range(k) for k in kernel)):
                sl = _window_slices(offset, out, stride, dilation)
                # x~[b, s*i + d*m, g, c] += dX_col,g[b, i, m, c]
                gx[(slice(None), *sl)] += d_cols[(*lead, *offset)].movedim(0, -2)
        return gxp, gw, gb, None, None, None, None


def sliding_windows(
    x: torch.Tensor, kernel_size, stride=1, padding=0, dilation=1, pad_value: float = 0.0
) -> torch.Tensor:
    """Every window of a channels-first input, gathered channels-last.

    Args:
        x: (B, C, *spatial) with 1 or 2 spatial dims.
        padding: int, per-dim ints, or per-dim (before, after) pairs.
        pad_value: what the padding holds (0 for convolution, -inf for max pooling).
    Returns:
        (B, *out, *kernel_size, C) where out is given by `conv_output_size` per dimension.
    """
    xp, k, s, d, out = _padded_windows(x, kernel_size, stride, padding, dilation, pad_value)
    return _Im2col.apply(xp, k, s, d, out)  # (B, *out, *k, C)


def _padded_windows(x: torch.Tensor, kernel_size, stride, padding, dilation, pad_value: float):
    """Check the window geometry and pad: (xp (B, *padded, C) channels-last, kernel, stride, dilation, out)."""
    nd = x.dim() - 2
    if nd not in (1, 2):
        raise ValueError(f"expected input of shape (B, C, L) or (B, C, H, W), got {tuple(x.shape)}")
    k = _tuple(kernel_size, nd, "kernel_size")
    s = _tuple(stride, nd, "stride")
    d = _tuple(dilation, nd, "dilation")
    if isinstance(padding, Sequence) and len(padding) == nd and all(isinstance(p, tuple) for p in padding):
        pads = [tuple(p) for p in padding]
    else:
        pads = [(p, p) for p in _tuple(padding, nd, "padding")]
    out = []
    for i in range(nd):
        span = d[i] * (k[i] - 1) + 1
        n = x.shape[2 + i] + pads[i][0] + pads[i][1]
        if n < span:
            raise ValueError(
                f"spatial dimension {i} (input dim {2 + i}) has size {x.shape[2 + i]} "
                f"(+{pads[i][0] + pads[i][1]} padding) but the kernel spans {span}"
            )
        if min(k[i], s[i], d[i]) < 1 or min(pads[i]) < 0:
            raise ValueError(f"kernel_size, stride, dilation must be >= 1 and padding >= 0, got {k}, {s}, {d}, {pads}")
        out.append((n - span) // s[i] + 1)
    x_cl = x.movedim(1, -1)  # (B, *spatial, C); free when x is a channels-first view of channels-last
    xp = _pad_channels_last(x_cl, pads, pad_value)  # (B, *padded, C), contiguous
    return xp, k, s, d, tuple(out)


def im2col(x: torch.Tensor, kernel_size, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """The im2col matrix in `torch.nn.functional.unfold`'s layout: (B, C * prod(kernel), L_out).

    Rows are ordered channel-major then kernel position, columns are output positions (row-major).
    """
    cols = sliding_windows(x, kernel_size, stride, padding, dilation)  # (B, *out, *k, C)
    nd = x.dim() - 2
    b, c = x.shape[:2]
    out = cols.shape[1 : 1 + nd]
    # (B, *out, *k, C) -> (B, C, *k, *out) -> (B, C*prod(k), prod(out))
    perm = (0, 2 * nd + 1, *range(nd + 1, 2 * nd + 1), *range(1, nd + 1))
    return cols.permute(perm).reshape(b, -1, math.prod(out))


def _resolve_padding(padding, kernel, dilation, stride, nd) -> list[tuple[int, int]]:
    if padding == "valid":
        return [(0, 0)] * nd
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)  # keeps n_out = n at stride 1; torch puts the odd one on the right
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int, a tuple of ints, 'same' or 'valid', got {padding!r}")
    p = _tuple(padding, nd, "padding")
    if min(p) < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    return [(v, v) for v in p]


def _conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding, dilation, groups: int, nd: int
) -> torch.Tensor:
    if x.dim() != nd + 2:
        names = "(B, C, L)" if nd == 1 else "(B, C, H, W)"
        raise ValueError(f"expected a {nd + 2}-D input {names}, got shape {tuple(x.shape)}")
    if weight.dim() != nd + 2:
        raise ValueError(
            f"weight must be (C_out, C_in/groups, *kernel_size) with {nd} kernel dims, got shape {tuple(weight.shape)}"
        )
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    b, c_in = x.shape[:2]
    c_out, c_g = weight.shape[:2]
    if c_in != c_g * groups:
        raise ValueError(
            f"input channel dimension (dim 1) is {c_in} but the weight expects {c_g} x groups={groups} = {c_g * groups}"
        )
    if c_out % groups:
        raise ValueError(f"out_channels={c_out} is not divisible by groups={groups}")
    kernel = tuple(weight.shape[2:])
    s = _tuple(stride, nd, "stride")
    d = _tuple(dilation, nd, "dilation")
    pads = _resolve_padding(padding, kernel, d, s, nd)
    if transforms_active():  # torch.func (vmap, grad, jvp): the autograd.Functions define no rules
        x = torch.nn.functional.pad(x, [q for a, b in reversed(pads) for q in (a, b)])
        return conv_equations(x, weight, bias, s, 0, d, groups)
    xp, kernel, s, d, out = _padded_windows(x, kernel, s, pads, d, 0.0)  # xp: (B, *padded, C_in)
    kk = math.prod(kernel)
    # kernels laid out to match the windows: (C_out, C_g, *k) -> (C_out, *k, C_g)
    w = weight.movedim(1, -1)
    if groups == 1:
        # Y = X_col W + beta, X_col built a batch chunk at a time: (B, *out, C_out)
        y = _ConvGemm.apply(xp, w.reshape(c_out, kk * c_in), bias, kernel, s, d, out)
        return y.movedim(-1, 1)  # (B, C_out, *out), a channels-first view
    # groups: group g's kernels (O_g, k C_g) in the windows' layout, one batched product over the groups
    wg = w.reshape(groups, c_out // groups, kk * c_g)  # (G, O_g, k C_g)
    y = _GroupedConvGemm.apply(xp, wg, bias, kernel, s, d, out)  # (B, *out, C_out)
    return y.movedim(-1, 1)  # (B, C_out, *out), a channels-first view


def conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> torch.Tensor:
    """1-D convolution (cross-correlation) of x (B, C_in, L) with weight (C_out, C_in/groups, k)."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D convolution (cross-correlation) of x (B, C_in, H, W) with weight (C_out, C_in/groups, kh, kw)."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, 2)


class _ConvNd(nn.Module):
    _nd = 0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        nd = self._nd
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if in_channels % groups:
            raise ValueError(f"in_channels={in_channels} must be divisible by groups={groups}")
        if out_channels % groups:
            raise ValueError(f"out_channels={out_channels} must be divisible by groups={groups}")
        if padding_mode != "zeros":
            raise ValueError(f"only padding_mode='zeros' is implemented, got {padding_mode!r}")
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size")
        self.stride = _tuple(stride, nd, "stride")
        self.dilation = _tuple(dilation, nd, "dilation")
        for name, v in (("kernel_size", self.kernel_size), ("stride", self.stride), ("dilation", self.dilation)):
            if min(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        _resolve_padding(padding, self.kernel_size, self.dilation, self.stride, nd)  # validates
        self.padding = padding if isinstance(padding, str) else _tuple(padding, nd, "padding")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode = padding_mode
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias,
        fan_in = C_in/groups * prod(kernel_size) (Kaiming-uniform with a = sqrt(5))."""
        fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def output_size(self, *spatial: int) -> tuple[int, ...]:
        """Output spatial size for an input of the given spatial size."""
        if len(spatial) != self._nd:
            raise ValueError(f"give {self._nd} spatial sizes, got {spatial}")
        pads = _resolve_padding(self.padding, self.kernel_size, self.dilation, self.stride, self._nd)
        return tuple(
            (n + a + b - d * (k - 1) - 1) // s + 1
            for n, (a, b), k, s, d in zip(spatial, pads, self.kernel_size, self.stride, self.dilation)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups, self._nd)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0,) * self._nd, "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (B, C_in, L) -> (B, C_out, L_out); arguments as `torch.nn.Conv1d`."""

    _nd = 1


class Conv2d(_ConvNd):
    """2-D convolution over (B, C_in, H, W) -> (B, C_out, H_out, W_out); arguments as `torch.nn.Conv2d`."""

    _nd = 2


declare(
    conv_equations,
    conv2d,
    _conv,
    _ConvGemm,
    _GroupedConvGemm,
    _Im2col,
    saves="One matrix product over every window (im2col) instead of one small product per kernel offset, "
    "with the backward written out from Y = X_col W + beta; X_col is built a few MiB of the batch at a "
    "time and rebuilt in the backward, so the k-times-larger window matrix is never held whole.",
)
