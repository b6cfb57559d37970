r"""Recurrent layers: Elman RNN, LSTM and GRU, written from their gate equations.

A recurrent layer reads a sequence $x_1, \dots, x_T$ one step at a time and carries a hidden state
$h_t$ from step to step, with the same weights at every step. Shapes and defaults are PyTorch's:
inputs are (T, B, I), or (B, T, I) with `batch_first=True` (the project's own models pass it); outputs
(T, B, D*H) (or (B, T, D*H)) with D = 2 when bidirectional; states are (L*D, B, H) either way.

Elman RNN (Elman, 1990, "Finding structure in time"):

$$h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$$

LSTM (Hochreiter & Schmidhuber, 1997, "Long short-term memory"; forget gate from Gers, Schmidhuber &
Cummins, 2000), gates in PyTorch's order i, f, g, o:

$$\begin{aligned}
i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
h_t &= o_t \odot \tanh(c_t)
\end{aligned}$$

GRU (Cho et al., 2014, "Learning phrase representations using RNN encoder-decoder"), gates r, z, n:

$$\begin{aligned}
r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
\end{aligned}$$

The gate matrices are stacked row-wise into one $W_{ih}$ of shape (G*H, I) and one $W_{hh}$ of shape
(G*H, H) (G = 1, 4, 3 gates), under PyTorch's names `weight_ih_l{k}`, `weight_hh_l{k}`,
`bias_ih_l{k}`, `bias_hh_l{k}` (and `..._reverse` for the backward direction), so a state dict of
`torch.nn.LSTM` loads into `dlterms.nn.LSTM` and back.

Speed: the input half $W_{ih} x_t + b_{ih}$ does not depend on the state, so it is computed for all
time steps at once in one matrix product before the time loop; inside the loop each step costs one
fused (B, H) x (H, G*H) product for all gates together, then element-wise gate arithmetic. The LSTM
(without `lengths`) goes further: `_LSTMSequence` runs the loop without recording an autograd graph
and backpropagates through time by hand, with the gate derivatives written out (see its docstring).

Without a gradient to record (under `torch.no_grad()`, or when nothing involved requires one), the
LSTM runs the same forward loop with no history kept (`_lstm_sequence_nograd`): evaluation is one
matrix product and six element-wise calls per step. Both fast paths are tested equal to
`lstm_sequence_equations`, the step equations (`lstm_step`) written out, which the file shows
first; under `torch.func` transforms and `create_graph=True` autograd differentiates those instead
(`dlterms.nn._fastpath`).

Variable-length batches: `forward(x, hx, lengths=...)` freezes each sequence's state once its
length is reached (and, for the backward direction, leaves it at $h_0$ until its last real step),
so padded positions change nothing; their outputs are zero, as with PyTorch's packed sequences.

Every parameter's gradient is a tensor of its own. (Two ways autograd can hand two parameters one
buffer are avoided on purpose: the sum $b_{ih} + b_{hh}$, whose backward passes the same gradient
to both, and the stacking of the two directions' weights, whose backward returns views of one
tensor. A shared buffer makes every in-place operation on gradients, such as clipping or
accumulating, hit it twice.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from dlterms.nn._fastpath import create_graph, declare, grads_through, needs_grad, transforms_active
from dlterms.nn.dropout import dropout

__all__ = [
    "lstm_step",
    "lstm_sequence_equations",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "RNN",
    "LSTM",
    "GRU",
    "init_forget_gate_bias_",
]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


# --------------------------------------------------------------------------- the equations: one time step
# Each step function takes the input half of the pre-activations already computed,
# xp = W_ih x_t + b_ih (+ b_hh where it can be folded in), shape (B, G*H), and the previous state.
# The same functions serve a stack of directions: xp (D, B, G*H), h (D, B, H), w_hh_t (D, H, G*H).


def _affine(bias: Tensor | None, h: Tensor, w_t: Tensor) -> Tensor:
    """bias + h w_t in one call: (B, H) x (H, G*H) (addmm) or (D, B, H) x (D, H, G*H) (baddbmm)."""
    if h.dim() == 2:
        return torch.mm(h, w_t) if bias is None else torch.addmm(bias, h, w_t)
    return torch.bmm(h, w_t) if bias is None else torch.baddbmm(bias, h, w_t)


def _rnn_step(xp: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None, relu: bool) -> Tensor:
    # a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    a = _affine(xp if b_hh is None else xp + b_hh, h, w_hh_t)  # (B, H)
    # h_t = tanh(a_t)   (or relu(a_t) for nonlinearity="relu")
    return torch.relu(a) if relu else torch.tanh(a)


def lstm_step(xp: Tensor, h: Tensor, c: Tensor, w_hh_t: Tensor, b_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step from its equations: (h_t, c_t) from xp = W_ih x_t + b_ih (B, 4H), h_{t-1}, c_{t-1}
    (B, H) and W_hh^T (H, 4H), gates in PyTorch's order (i, f, g, o)."""
    # all four gates' pre-activations in one product: (B, H) x (H, 4H) -> (B, 4H)
    gates = _affine(xp if b_hh is None else xp + b_hh, h, w_hh_t)
    i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H)
    # i_t, f_t, o_t = sigma(.);  g_t = tanh(.)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    # c_t = f_t * c_{t-1} + i_t * g_t
    c = torch.addcmul(f * c, i, g)
    # h_t = o_t * tanh(c_t)
    h = o * torch.tanh(c)
    return h, c


def _gru_step(xp: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None) -> Tensor:
    H = h.shape[-1]
    # W_hh h_{t-1} + b_hh for r, z, n together: (B, H) x (H, 3H) -> (B, 3H)
    hh = _affine(b_hh, h, w_hh_t)
    x_rz, x_n = xp.split([2 * H, H], dim=-1)  # (B, 2H), (B, H)
    h_rz, h_n = hh.split([2 * H, H], dim=-1)
    # r_t, z_t = sigma(W_i{r,z} x_t + b_i{r,z} + W_h{r,z} h_{t-1} + b_h{r,z})
    r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=-1)
    # n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    n = torch.tanh(torch.addcmul(x_n, r, h_n))
    # h_t = (1 - z_t) * n_t + z_t * h_{t-1}  =  n_t + z_t * (h_{t-1} - n_t)
    return torch.addcmul(n, z, h - n)


# --------------------------------------------------------------------------- the equations: LSTM, whole sequence


def lstm_sequence_equations(xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """An LSTM over a whole sequence, step by step through `lstm_step`; autograd differentiates it.

    xp (T, D, B, 4H) holds the input half $W_{ih} x_t + b_{ih} + b_{hh}$ of every step (D directions
    stacked, each reading its own time order); h0, c0 (D, B, H); w_hh (D, 4H, H). Returns all $h_t$
    (T, D, B, H), $h_T$ and $c_T$ (D, B, H). `LSTM` runs the same values through `_LSTMSequence` (below).
    """
    w_hh_t = w_hh.transpose(1, 2)  # (D, H, 4H)
    h, c, outs = h0, c0, []
    for xp_t in xp.unbind(0):  # (D, B, 4H)
        h, c = lstm_step(xp_t, h, c, w_hh_t, None)
        outs.append(h)
    return torch.stack(outs), h, c  # (T, D, B, H), (D, B, H), (D, B, H)


# --------------------------------------------------------------------------- LSTM: fast path
# The same values as lstm_sequence_equations with backpropagation through time written out. Autograd
# of the equations records ~10 small operations per step and replays them one by one backwards; the
# fast path builds no graph forward, keeps only the gate activations, and computes every local
# derivative for all steps at once, so that each backward step is four calls. Without a gradient to
# compute, `_lstm_sequence_nograd` runs the same loop keeping no history.


class _LSTMSequence(torch.autograd.Function):
    r"""An LSTM over a whole sequence with hand-written backpropagation through time.

    Autograd would record ~10 small operations per time step and replay them one by one backwards;
    here the forward loop builds no graph and keeps only the gate activations, and the backward loop
    is the chain rule written out. Everything that does not depend on the neighbouring step (the
    local derivatives of the gates, the weight gradient) is computed for all steps at once.

    Inputs, with D directions stacked on the second axis and the gates in PyTorch's order (i, f, g, o):
    xp (T, D, B, 4H) the input half $W_{ih} x_t + b_{ih} + b_{hh}$; h0, c0 (D, B, H); w_hh (D, 4H, H).
    Returns all $h_t$ (T, D, B, H), $h_T$ and $c_T$ (D, B, H). The hand-written backward is for speed;
    under `create_graph=True` autograd differentiates `lstm_sequence_equations` instead.

    One sigmoid call covers all four gates: $g_t = \tanh(a^g_t) = 2\sigma(2a^g_t) - 1$, so the g rows
    are doubled and $c_t = f_t c_{t-1} + i_t g_t = f_t c_{t-1} + 2 i_t \sigma(2a^g_t) - i_t$.

    Backward, with $\bar{x} = \partial L / \partial x$, $a_t$ the pre-activations, $\tau_t = \tanh c_t$:

    $$\begin{aligned}
    \bar h_t &= \bar y_t + \bar a_{t+1} W_{hh}
        && \text{(the output's gradient, plus what step } t+1 \text{ sends back)} \\
    \bar c_t &= \bar h_t\, o_t (1 - \tau_t^2) + \bar c_{t+1} f_{t+1} \\
    \bar a^i_t &= \bar c_t\, g_t\, i_t (1 - i_t), \quad
    \bar a^f_t = \bar c_t\, c_{t-1} f_t (1 - f_t), \quad
    \bar a^g_t = \bar c_t\, i_t (1 - g_t^2), \quad
    \bar a^o_t = \bar h_t\, \tau_t\, o_t (1 - o_t) \\
    \bar W_{hh} &= \textstyle\sum_t \bar a_t^\top h_{t-1}, \qquad \bar{xp}_t = \bar a_t, \qquad
    \bar h_0 = \bar a_1 W_{hh}, \quad \bar c_0 = \bar c_1 f_1 .
    \end{aligned}$$
    """

    @staticmethod
    def forward(ctx, xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor):
        T, D, B, G = xp.shape
        H = G // 4
        gates, w_hh_t = _doubled_g_rows(xp, w_hh, in_place=False)
        hs = xp.new_empty(T + 1, D, B, H)  # h_0 .. h_T
        cs = xp.new_empty(T + 1, D, B, H)  # c_0 .. c_T
        tcs = xp.new_empty(T, D, B, H)  # tanh(c_1) .. tanh(c_T)
        hs[0], cs[0] = h0, c0
        _lstm_loop(gates, w_hh_t, hs.unbind(0), cs.unbind(0), tcs.unbind(0))
        ctx.save_for_backward(gates, hs, cs, tcs, xp, h0, c0, w_hh)
        return hs[1:].clone(), hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out: Tensor, d_hT: Tensor, d_cT: Tensor):
        gates, hs, cs, tcs, xp, h0, c0, w_hh = ctx.saved_tensors
        if create_graph():  # a gradient to differentiate again: autograd of the equations instead
            return grads_through(lstm_sequence_equations, (xp, h0, c0, w_hh), ctx.needs_input_grad, (d_out, d_hT, d_cT))
        T, D, B, G = gates.shape
        H = G // 4
        i, f, sg, o = gates.view(T, D, B, 4, H).unbind(3)  # each (T, D, B, H)
        g = torch.add(sg, sg).sub_(1)  # g_t = 2 s_g - 1
        one = gates.new_ones(())
        # Local derivatives for all steps at once (none depends on the gradient flowing back), laid out
        # so that each step is four calls: K_c multiplies dc_t, K_h multiplies dh_t.
        K_c = gates.new_empty(T, D, B, 4, H)
        K_c[:, :, :, 0] = f  # dc_{t-1} = ... + dc_t f_t
        torch.mul(g, torch.addcmul(i, i, i, value=-1), out=K_c[:, :, :, 1])  # g_t i_t (1 - i_t)
        torch.mul(cs[:-1], torch.addcmul(f, f, f, value=-1), out=K_c[:, :, :, 2])  # c_{t-1} f_t (1 - f_t)
        torch.mul(i, torch.addcmul(one, g, g, value=-1), out=K_c[:, :, :, 3])  # i_t (1 - g_t^2)
        K_h = gates.new_empty(T, D, B, 2, H)
        torch.mul(tcs, torch.addcmul(o, o, o, value=-1), out=K_h[:, :, :, 0])  # tanh(c_t) o_t (1 - o_t)
        torch.mul(o, torch.addcmul(one, tcs, tcs, value=-1), out=K_h[:, :, :, 1])  # o_t (1 - tanh^2 c_t)
        # E_t = [dc_t f_t, da^i_t, da^f_t, da^g_t, da^o_t, dh_t o_t (1 - tanh^2 c_t)]: (T, D, B, 6, H);
        # slots 1..4 are da_t in PyTorch's gate order
        E = gates.new_empty(T, D, B, 6, H)
        dh = d_out.clone(memory_format=torch.contiguous_format)  # dh_t, completed backwards, (T, D, B, H)
        dh[T - 1] += d_hT
        dh_col = dh.unsqueeze(3).unbind(0)  # (D, B, 1, H) views of the same
        dh, K_c, K_h = dh.unbind(0), K_c.unbind(0), K_h.unbind(0)
        E_c, E_h = E[:, :, :, 0:4].unbind(0), E[:, :, :, 4:6].unbind(0)
        da = E[:, :, :, 1:5].flatten(3).unbind(0)  # (D, B, 4H), rows 6H apart
        dcf = E[:, :, :, 0:1].unbind(0)  # dc_t f_t, (D, B, 1, H)
        dhA = E[:, :, :, 5:6].unbind(0)
        dc = d_cT.unsqueeze(2)  # dc_{T+1} f_{T+1} stands for the gradient of c_T, (D, B, 1, H)
        for t in range(T - 1, -1, -1):
            # dh_t = dy_t + da_{t+1} W_hh: (D, B, 4H) x (D, 4H, H) -> (D, B, H)
            if t < T - 1:
                dh[t].baddbmm_(da[t + 1], w_hh)
            # da^o_t = dh_t tanh(c_t) o_t (1 - o_t), and dh_t o_t (1 - tanh^2 c_t)
            torch.mul(K_h[t], dh_col[t], out=E_h[t])
            # dc_t = dh_t o_t (1 - tanh^2 c_t) + dc_{t+1} f_{t+1}
            dc = torch.add(dhA[t], dc if t == T - 1 else dcf[t + 1])
            # dc_t f_t (for step t - 1) and da^{i,f,g}_t = dc_t * (their local derivatives)
            torch.mul(K_c[t], dc, out=E_c[t])
        d_a = E[:, :, :, 1:5].reshape(T, D, B, G)  # (T, D, B, 4H)
        d_h0 = torch.bmm(d_a[0], w_hh)  # (D, B, 4H) x (D, 4H, H) -> (D, B, H)
        d_c0 = dcf[0].squeeze(2)
        # dW_hh = sum_t da_t^T h_{t-1}: (D, 4H, T*B) x (D, T*B, H) -> (D, 4H, H)
        d_w = torch.bmm(
            d_a.transpose(0, 1).reshape(D, T * B, G).transpose(1, 2), hs[:-1].transpose(0, 1).reshape(D, T * B, H)
        )
        return d_a, d_h0, d_c0, d_w


def _doubled_g_rows(xp: Tensor, w_hh: Tensor, in_place: bool) -> tuple[Tensor, Tensor]:
    r"""Prepare the fast loops' one-sigmoid trick: $x_p$ and $W_{hh}^\top$ with their g rows doubled, since
    $\tanh(a) = 2\sigma(2a) - 1$. Returns (gates (T, D, B, 4H) contiguous, W_hh^T (D, H, 4H) contiguous).

    `in_place` doubles `xp`'s own g rows (it must be contiguous, and the caller's to overwrite); otherwise
    the doubled copy is made in one pass. W_hh^T is written contiguous in the same pass as its doubling: a
    (B, H) x (H, 4H) product reads it row by row, and on small batches this layout runs the step's matrix
    product about 1.5x faster than the transposed view."""
    D, G, H = w_hh.shape[0], w_hh.shape[1], w_hh.shape[1] // 4
    two = w_hh.new_ones(G)
    two[2 * H : 3 * H] = 2
    if in_place:
        xp.view(*xp.shape[:-1], 4, H)[..., 2, :].mul_(2)
        gates = xp
    else:
        gates = torch.mul(xp, two, out=xp.new_empty(xp.shape))
    w_hh_t = torch.mul(w_hh.transpose(1, 2), two, out=w_hh.new_empty(D, H, G))
    return gates, w_hh_t


def _lstm_loop(gates: Tensor, w_hh_t: Tensor, h: Sequence[Tensor], c: Sequence[Tensor], tc: Sequence[Tensor]) -> None:
    r"""The LSTM's time loop with the g rows doubled (see `_doubled_g_rows`), writing into given buffers.

    gates (T, D, B, 4H) holds $W_{ih} x_t + b$ on entry and the gate activations $(i, f, s_g, o)$ on
    exit. h[t], c[t] (t = 0..T) and tc[t] (t = 0..T-1) are (D, B, H) tensors: $h_t$, $c_t$ and
    $\tanh c_{t+1}$; h[0], c[0] hold the initial state. The training forward passes T + 1 separate
    buffers (it keeps the history for backpropagation); inference can pass the same buffer again
    and again for c and tc.
    """
    T, D, B, G = gates.shape
    H = G // 4
    # per-step views, made once (indexing a tensor inside the loop costs as much as the arithmetic);
    # i, f, s_g, o each (D, B, H)
    i, f, sg, o = (x.unbind(0) for x in gates.view(T, D, B, 4, H).unbind(3))
    a = gates.unbind(0)
    for t in range(T):
        # a_t = xp_t + h_{t-1} W_hh^T: (D, B, H) x (D, H, 4H) -> (D, B, 4H)
        a[t].baddbmm_(h[t], w_hh_t)
        # i_t, f_t, o_t = sigma(a_t);  s_g = sigma(2 a^g_t), g_t = 2 s_g - 1
        a[t].sigmoid_()
        # c_t = f_t * c_{t-1} + i_t * g_t = f_t * c_{t-1} + 2 i_t s_g - i_t
        torch.mul(f[t], c[t], out=c[t + 1]).addcmul_(i[t], sg[t], value=2).sub_(i[t])
        # h_t = o_t * tanh(c_t)
        torch.mul(o[t], torch.tanh(c[t + 1], out=tc[t]), out=h[t + 1])


def _lstm_sequence_nograd(
    xp: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, overwrite_xp: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """What `_LSTMSequence` returns, when no gradient is needed: the same loop without the history
    backpropagation would need (c and tanh c live in one buffer each, the h_t go straight to the output).
    With `overwrite_xp` a contiguous `xp` is used as the loop's work buffer instead of a copy."""
    T, D, B, G = xp.shape
    H = G // 4
    gates, w_hh_t = _doubled_g_rows(xp, w_hh, in_place=overwrite_xp and xp.is_contiguous())
    out = xp.new_empty(T, D, B, H)  # h_1 .. h_T
    c = c0.clone(memory_format=torch.contiguous_format)  # c_t, updated in place
    tc = xp.new_empty(D, B, H)  # tanh(c_t)
    _lstm_loop(gates, w_hh_t, (h0, *out.unbind(0)), [c] * (T + 1), [tc] * T)
    return out, out[T - 1].clone(), c


class _SumOwnGradients(torch.autograd.Function):
    """a + b for two parameters, with a backward that gives each its own gradient tensor.

    Autograd's own sum passes one gradient tensor to both inputs; when both are leaves reached through
    views, both `.grad` end up as that one buffer (so `clip_grad_norm_` scales it twice, a second
    backward adds twice). The clone costs one (D, G*H) copy per backward."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        return a + b

    @staticmethod
    def backward(ctx, g: Tensor):
        return g, (g.clone() if ctx.needs_input_grad[1] else None)


class _StackOwnGradients(torch.autograd.Function):
    """torch.stack of the directions' parameters, with a backward that gives each its own gradient
    (torch.stack's backward returns views of one tensor, which autograd would keep as every `.grad`)."""

    @staticmethod
    def forward(ctx, *ps: Tensor) -> Tensor:
        return torch.stack(ps)

    @staticmethod
    def backward(ctx, g: Tensor):
        return tuple(x.clone() if need else None for x, need in zip(g.unbind(0), ctx.needs_input_grad))


def _stack_params(ps: Sequence[Tensor]) -> Tensor:
    """The directions' copies of one parameter on a leading axis (D, ...): a view when D = 1."""
    if len(ps) == 1:
        return ps[0].unsqueeze(0)
    # no graph to record, or torch.func transforms (for which custom Functions define no rules)
    if not torch.is_grad_enabled() or transforms_active():
        return torch.stack(ps)
    return _StackOwnGradients.apply(*ps)


def _sum_params(a: Tensor, b: Tensor) -> Tensor:
    """b_ih + b_hh, each parameter getting its own gradient (see `_SumOwnGradients`)."""
    if not torch.is_grad_enabled() or transforms_active():
        return a + b
    return _SumOwnGradients.apply(a, b)


def _check_sizes(input_size: int, hidden_size: int) -> None:
    if not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size must be a positive integer, got {input_size!r}")
    if not isinstance(hidden_size, int) or hidden_size < 1:
        raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")


# --------------------------------------------------------------------------- cells


class _CellBase(torch.nn.Module):
    """One time step: parameters `weight_ih` (G*H, I), `weight_hh` (G*H, H), `bias_ih`, `bias_hh`."""

    mode = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        _check_sizes(input_size, hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G = _GATES[self.mode]
        kw = {"device": device, "dtype": dtype}  # torch's factory arguments
        self.weight_ih = torch.nn.Parameter(torch.empty(G * hidden_size, input_size, **kw))
        self.weight_hh = torch.nn.Parameter(torch.empty(G * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = torch.nn.Parameter(torch.empty(G * hidden_size, **kw))
            self.bias_hh = torch.nn.Parameter(torch.empty(G * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            torch.nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def _prepare(self, input: Tensor) -> tuple[Tensor, bool]:
        if input.dim() not in (1, 2):
            raise ValueError(f"input must be (B, input_size) or (input_size,), got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input's last dimension must be input_size={self.input_size}, got {input.shape[-1]}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        # xp = W_ih x + b_ih: (B, I) x (I, G*H) -> (B, G*H)
        w_ih_t = self.weight_ih.t()
        xp = x @ w_ih_t if self.bias_ih is None else torch.addmm(self.bias_ih, x, w_ih_t)
        return xp, batched

    def _state(self, hx: Tensor | None, xp: Tensor, batched: bool) -> Tensor:
        if hx is None:
            return xp.new_zeros(xp.shape[0], self.hidden_size)
        h = hx if batched else hx.unsqueeze(0)
        if h.shape != (xp.shape[0], self.hidden_size):
            raise ValueError(f"hidden state must have shape {(xp.shape[0], self.hidden_size)}, got {tuple(h.shape)}")
        return h


class RNNCell(_CellBase):
    """Elman cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu)."""

    mode = "RNN_TANH"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)

    def extra_repr(self) -> str:
        extra = "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return super().extra_repr() + extra

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        xp, batched = self._prepare(input)
        h = _rnn_step(xp, self._state(hx, xp, batched), self.weight_hh.t(), self.bias_hh, self.nonlinearity == "relu")
        return h if batched else h.squeeze(0)


class LSTMCell(_CellBase):
    """LSTM cell: (h', c') from x and (h, c); see the module docstring for the gate equations."""

    mode = "LSTM"

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        xp, batched = self._prepare(input)
        h, c = (None, None) if hx is None else hx
        h, c = lstm_step(xp, self._state(h, xp, batched), self._state(c, xp, batched), self.weight_hh.t(), self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    """GRU cell: h' from x and h; see the module docstring for the gate equations."""

    mode = "GRU"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        xp, batched = self._prepare(input)
        h = _gru_step(xp, self._state(hx, xp, batched), self.weight_hh.t(), self.bias_hh)
        return h if batched else h.squeeze(0)


# --------------------------------------------------------------------------- multi-layer


class _RNNBase(torch.nn.Module):
    """Stacked, optionally bidirectional recurrent layers over whole sequences."""

    mode = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        _check_sizes(input_size, hidden_size)
        if proj_size != 0:
            raise ValueError(f"proj_size is not supported (an LSTM with projections), got proj_size={proj_size!r}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = float(dropout)
        G, D = _GATES[self.mode], 2 if bidirectional else 1
        kw = {"device": device, "dtype": dtype}  # torch's factory arguments
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * D
            for suffix in ("", "_reverse")[:D]:
                self.register_parameter(
                    f"weight_ih_l{layer}{suffix}", torch.nn.Parameter(torch.empty(G * hidden_size, in_size, **kw))
                )
                self.register_parameter(
                    f"weight_hh_l{layer}{suffix}", torch.nn.Parameter(torch.empty(G * hidden_size, hidden_size, **kw))
                )
                if bias:
                    self.register_parameter(
                        f"bias_ih_l{layer}{suffix}", torch.nn.Parameter(torch.empty(G * hidden_size, **kw))
                    )
                    self.register_parameter(
                        f"bias_hh_l{layer}{suffix}", torch.nn.Parameter(torch.empty(G * hidden_size, **kw))
                    )
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            torch.nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _params(self, layer: int, reverse: bool):
        sfx = f"l{layer}" + ("_reverse" if reverse else "")
        return (
            getattr(self, f"weight_ih_{sfx}"),
            getattr(self, f"weight_hh_{sfx}"),
            getattr(self, f"bias_ih_{sfx}", None),
            getattr(self, f"bias_hh_{sfx}", None),
        )

    def _n_states(self) -> int:
        return 2 if self.mode == "LSTM" else 1

    def flatten_parameters(self) -> None:
        """Does nothing. torch's recurrent layers copy their weights into one contiguous buffer for cuDNN
        here; ours keep each weight as its own parameter, so there is nothing to flatten. Defined so that
        code written for torch.nn (which calls it, e.g. after moving the model to a GPU) runs unchanged."""

    def forward(self, input: Tensor, hx=None, lengths: Tensor | None = None):
        """Run the layers over a whole sequence.

        Args:
            input: (T, B, I), or (B, T, I) when batch_first; or (T, I) unbatched.
            hx: initial state (L*D, B, H) (for LSTM a pair (h_0, c_0)); zeros when None.
            lengths: optional (B,) true lengths of a right-padded batch; steps past a sequence's
                length leave its state unchanged and give zero outputs.
        Returns:
            output (T, B, D*H) (or (B, T, D*H) when batch_first), and h_n (L*D, B, H) (for LSTM the pair
            (h_n, c_n)); states are (L*D, B, H) in both layouts, as in torch.
        """
        if isinstance(input, torch.nn.utils.rnn.PackedSequence):
            raise ValueError(
                "a PackedSequence input is not supported: pass the padded batch and its lengths "
                "(forward(padded, hx, lengths=lengths)), which gives the same outputs and states"
            )
        if input.dim() not in (2, 3):
            raise ValueError(f"input must be 3-D (batched) or 2-D (unbatched), got shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"input's last dimension must be input_size={self.input_size}, got {input.shape[-1]}")
        batched = input.dim() == 3
        if not batched:
            x = input.unsqueeze(1)  # (T, 1, I)
        else:
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I): time-major inside
        T, B, _ = x.shape
        L, D = self.num_layers, self.num_directions
        states = self._initial_states(hx, B, x, batched)  # each (L*D, B, H)
        mask = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            if lengths.shape != (B,):
                raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
            if int(lengths.min()) < 1 or int(lengths.max()) > T:
                raise ValueError(
                    f"lengths must lie in [1, {T}], got min {int(lengths.min())} and max {int(lengths.max())}"
                )
            # mask[t, b] = t < length_b: (T, B, 1)
            mask = (torch.arange(T, device=x.device)[:, None] < lengths[None, :]).unsqueeze(-1)
        finals: list[list[Tensor]] = [[] for _ in range(self._n_states())]
        for layer in range(L):
            state = tuple(st[layer * D : (layer + 1) * D] for st in states)  # each (D, B, H)
            x, state = self._layer(x, state, layer, mask)  # (T, B, D*H)
            for k, st in enumerate(state):
                finals[k].append(st)
            if self.dropout and self.training and layer < L - 1:
                x = dropout(x, self.dropout, training=True)
        if mask is not None:
            x = x * mask  # zero outputs at padded steps
        output = x.transpose(0, 1) if (batched and self.batch_first) else x
        h_n = [f[0] if len(f) == 1 else torch.cat(f) for f in finals]  # each (L*D, B, H)
        if not batched:
            output, h_n = output.squeeze(1), [h.squeeze(1) for h in h_n]
        return output, (tuple(h_n) if self.mode == "LSTM" else h_n[0])

    def _initial_states(self, hx, B: int, x: Tensor, batched: bool) -> tuple[Tensor, ...]:
        n, shape = self._n_states(), (self.num_layers * self.num_directions, B, self.hidden_size)
        if hx is None:
            return tuple(x.new_zeros(shape) for _ in range(n))
        hs = tuple(hx) if n == 2 else (hx,)
        if len(hs) != n:
            raise ValueError(f"hx must be a pair (h_0, c_0) for LSTM, got {len(hs)} tensors")
        out = []
        for h in hs:
            h = h if batched else h.unsqueeze(1)
            if h.shape != shape:
                raise ValueError(f"initial state must have shape {shape}, got {tuple(h.shape)}")
            out.append(h)
        return tuple(out)

    def _layer(self, x: Tensor, state: tuple[Tensor, ...], layer: int, mask: Tensor | None):
        """One layer, all its directions together. x: (T, B, I) -> outputs (T, B, D*H), final states (D, B, H).

        The directions are stacked on a leading axis and step together, the backward one reading time
        reversed, so a bidirectional layer makes as many tensor calls per step as a unidirectional one.
        """
        T, B, I = x.shape
        D = self.num_directions
        params = [self._params(layer, reverse=d == 1) for d in range(D)]

        def stack(k: int) -> Tensor:  # parameter k of each direction on a leading axis (a view when D = 1)
            return _stack_params([p[k] for p in params])

        w_ih, w_hh = stack(0), stack(1)  # (D, G*H, I), (D, G*H, H)
        # an LSTM without `lengths` runs as one _LSTMSequence, except under torch.func transforms (vmap,
        # grad, jvp), for which it defines no rules: there the step loop below is differentiated
        fused = self.mode == "LSTM" and mask is None and not transforms_active()
        w_hh_t = w_hh.transpose(1, 2)  # (D, H, G*H)
        # Input half for all steps at once: (D, T*B, I) x (D, I, G*H) -> (D, T*B, G*H), plus the bias.
        # For RNN and LSTM both biases sit outside any product, so b_hh is folded in here too;
        # GRU keeps b_hn inside r_t * (W_hn h + b_hn), so its b_hh stays in the step.
        x_all = x.reshape(1, T * B, I).expand(D, T * B, I)
        step_b_hh = None
        if self.bias:
            b_ih, b_hh = stack(2).unsqueeze(1), stack(3).unsqueeze(1)  # (D, 1, G*H)
            if self.mode == "GRU":
                bias, step_b_hh = b_ih, b_hh
            else:
                bias = _sum_params(b_ih, b_hh)  # not b_ih + b_hh: see the module docstring
            xp = torch.baddbmm(bias, x_all, w_ih.transpose(1, 2))
        else:
            xp = torch.bmm(x_all, w_ih.transpose(1, 2))
        xp = xp.view(D, T, B, -1)
        if D == 2:  # loop step t reads time t forwards and time T-1-t backwards
            xp = torch.stack([xp[0], xp[1].flip(0)], dim=1)  # (T, 2, B, G*H)
            mask = None if mask is None else torch.stack([mask, mask.flip(0)], dim=1)  # (T, 2, B, 1)
        else:
            xp = xp.transpose(0, 1)  # (T, 1, B, G*H)
            mask = None if mask is None else mask.unsqueeze(1)  # (T, 1, B, 1)
        if fused:
            if needs_grad(xp, *state, w_hh):
                out, h, c = _LSTMSequence.apply(xp, *state, w_hh)  # (T, D, B, H), (D, B, H), (D, B, H)
            else:  # evaluation: the same loop, keeping no history (xp is this call's own temporary)
                out, h, c = _lstm_sequence_nograd(xp, *state, w_hh, overwrite_xp=True)
            if D == 1:
                return out.view(T, B, -1), (h, c)  # a view, not a select: its backward copies nothing
            return torch.cat([out[:, 0], out[:, 1].flip(0)], dim=-1), (h, c)  # (T, B, 2H)
        xs = xp.unbind(0)  # T views of (D, B, G*H)
        masks = mask.unbind(0) if mask is not None else None
        outs: list[Tensor] = []
        if self.mode == "LSTM":
            h, c = state
            for t in range(T):
                h_new, c_new = lstm_step(xs[t], h, c, w_hh_t, step_b_hh)
                if masks is not None:  # past its length a sequence keeps its state
                    h, c = torch.where(masks[t], h_new, h), torch.where(masks[t], c_new, c)
                else:
                    h, c = h_new, c_new
                outs.append(h)
            final = (h, c)
        else:
            (h,) = state
            relu = self.mode == "RNN_RELU"
            for t in range(T):
                h_new = (
                    _gru_step(xs[t], h, w_hh_t, step_b_hh)
                    if self.mode == "GRU"
                    else _rnn_step(xs[t], h, w_hh_t, step_b_hh, relu)
                )
                h = torch.where(masks[t], h_new, h) if masks is not None else h_new
                outs.append(h)
            final = (h,)
        out = torch.stack(outs)  # (T, D, B, H)
        if D == 1:
            return out[:, 0], final
        return torch.cat([out[:, 0], out[:, 1].flip(0)], dim=-1), final  # (T, B, 2H)


class RNN(_RNNBase):
    """Multi-layer Elman RNN, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); drop-in for torch.nn.RNN."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device=device, dtype=dtype
        )

    def extra_repr(self) -> str:
        extra = "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return super().extra_repr() + extra


class LSTM(_RNNBase):
    """Multi-layer LSTM; returns (output, (h_n, c_n)); drop-in for torch.nn.LSTM without proj_size."""

    mode = "LSTM"


class GRU(_RNNBase):
    """Multi-layer GRU; returns (output, h_n); drop-in for torch.nn.GRU."""

    mode = "GRU"


# --------------------------------------------------------------------------- initialisation


@torch.no_grad()
def init_forget_gate_bias_(module: torch.nn.Module, value: float = 1.0) -> torch.nn.Module:
    """Set every LSTM forget-gate bias so that b_if + b_hf = `value`; returns the module.

    With a large positive value, f_t = sigma(...) starts near 1, so c_t = f_t c_{t-1} + ... keeps
    what it stored and gradients flow back through many steps from the first update (Gers et al.,
    2000; Jozefowicz et al., 2015 recommend 1). Works on our LSTM/LSTMCell and on torch's, since
    both use the same names and gate order (i, f, g, o).
    """
    if not math.isfinite(value):
        raise ValueError(f"value must be finite, got {value}")
    kinds = LSTM | LSTMCell | torch.nn.LSTM | torch.nn.LSTMCell
    lstms = [m for m in module.modules() if isinstance(m, kinds)]
    if not lstms:
        raise ValueError(f"module contains no LSTM or LSTMCell: {type(module).__name__}")
    for m in lstms:
        for name, p in m.named_parameters(recurse=False):
            if name.startswith("bias_ih") or name.startswith("bias_hh"):
                H = p.shape[0] // 4
                # the forget gate is the second of four blocks (i, f, g, o): rows H..2H
                p[H : 2 * H] = value if name.startswith("bias_ih") else 0.0
    return module


declare(
    lstm_sequence_equations,
    _RNNBase._layer,
    _LSTMSequence,
    _lstm_loop,
    _lstm_sequence_nograd,
    saves="Backpropagation through time written out: the forward loop builds no graph and keeps only the "
    "gate activations, one sigmoid call covers all four gates, and every local derivative is computed for "
    "all steps at once, so a backward step is four calls where autograd of the equations replays ~10 "
    "recorded operations. Without a gradient to compute the same loop keeps no history at all.",
)
