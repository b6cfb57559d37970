r"""K independent networks evaluated as one: the batched form used to train many agents in lockstep.

Independent repeats of a small reinforcement-learning run (one agent per seed, per learning rate, with
and without replay) cost what one run costs when their networks are stacked: member $k$'s layer
$\ell$ has its own $W_\ell^{(k)} \in \mathbb{R}^{n_{in} \times n_{out}}$ and $b_\ell^{(k)}$, and one
batched matrix product computes every member at once,

$$h_\ell^{(k)} = \phi\big(h_{\ell-1}^{(k)} W_\ell^{(k)} + b_\ell^{(k)}\big), \qquad k = 1, \dots, K,$$

on inputs of shape (K, B, n_in). Nothing is shared between members: member $k$'s output depends only
on its own input and weights, so the gradient of $\sum_k L^{(k)}$ with respect to member $k$'s weights
is the gradient of $L^{(k)}$ alone, and an elementwise optimiser such as Adam then updates each member
exactly as if it trained by itself. Two things are not elementwise and are done per member here:
gradient clipping by norm (`clip_grad_norm_per_member_`, the norm taken over member $k$'s gradients
only) and the learning rate (members are stored in groups, one parameter tensor per group and layer,
so each group can be given to the optimiser with its own learning rate).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dlterms.nn.linear import MLP, Linear

__all__ = ["EnsembleMLP", "clip_grad_norm_per_member_"]


class EnsembleMLP(nn.Module):
    """K MLPs of the same shape, stacked: input (K, B, in_features) -> output (K, B, out_features).

    Built from existing `dlterms.nn.MLP`s (member k starts with exactly mlps[k]'s weights, so a member
    is initialised like a single network built with the same seed), in groups of consecutive members:
    `groups=[3, 2]` stores members 0-2 and 3-4 in separate parameter tensors, which `group_parameters()`
    returns group by group (one optimiser parameter group, with its own learning rate, per group).

    Args:
        mlps: the K networks; same layer sizes and activations (without parameters), no dropout.
        groups: member counts per group (sum K); None: one group.
    """

    def __init__(self, mlps: Sequence[MLP], groups: Sequence[int] | None = None):
        super().__init__()
        mlps = list(mlps)
        if not mlps:
            raise ValueError("give at least one MLP")
        sizes = mlps[0].sizes
        for m in mlps:
            if not isinstance(m, MLP) or m.sizes != sizes or m.dropout:
                raise ValueError("every member must be a dlterms.nn.MLP with the same sizes and no dropout")
        groups = [len(mlps)] if groups is None else [int(g) for g in groups]
        if min(groups) < 1 or sum(groups) != len(mlps):
            raise ValueError(f"groups must be positive counts summing to {len(mlps)}, got {groups}")
        self.sizes, self.members, self.groups = sizes, len(mlps), groups
        # the layer plan of the first member: ("linear", i) for its i-th Linear, or an activation module
        self._plan: list = []
        n_linear = 0
        for layer in mlps[0]:
            if isinstance(layer, Linear):
                self._plan.append(("linear", n_linear))
                n_linear += 1
            else:
                self._plan.append(layer)
        self.n_linear = n_linear
        self.weights = nn.ParameterList()  # index g * n_linear + i: group g, layer i, (K_g, n_in, n_out)
        self.biases = nn.ParameterList()  # (K_g, 1, n_out)
        start = 0
        for g in groups:
            members = mlps[start : start + g]
            start += g
            for i in range(n_linear):
                lins = [[m for m in mlp if isinstance(m, Linear)][i] for mlp in members]
                w = torch.stack([lin.weight.detach().t() for lin in lins])  # (K_g, n_in, n_out)
                b = torch.stack([lin.bias.detach()[None] for lin in lins])  # (K_g, 1, n_out)
                self.weights.append(nn.Parameter(w.clone()))
                self.biases.append(nn.Parameter(b.clone()))

    def layer(self, i: int) -> tuple[Tensor, Tensor]:
        """Linear layer i's stacked weight (K, n_in, n_out) and bias (K, 1, n_out) over every group."""
        if getattr(self, "_by_layer", None) is None:  # plain lists of the same Parameters: cheaper to index
            n, g = self.n_linear, len(self.groups)
            self._by_layer = [
                ([self.weights[j * n + li] for j in range(g)], [self.biases[j * n + li] for j in range(g)])
                for li in range(n)
            ]
        ws, bs = self._by_layer[i]
        if len(ws) == 1:
            return ws[0], bs[0]
        if torch.is_grad_enabled():
            return torch.cat(ws), torch.cat(bs)
        # without autograd (acting, targets, evaluation) the concatenation is reused until a parameter
        # changes: the key holds each tensor's identity and version counter, which every in-place update
        # (optimiser step, soft or hard target copy) increments
        key = tuple((id(p), p._version) for p in (*ws, *bs))
        cache = self.__dict__.setdefault("_cat_cache", {})
        hit = cache.get(i)
        if hit is None or hit[0] != key:
            hit = cache[i] = (key, torch.cat(ws), torch.cat(bs))
        return hit[1], hit[2]

    def group_parameters(self) -> list[list[nn.Parameter]]:
        """The parameters of each group, in order: pass one optimiser parameter group per group."""
        n = self.n_linear
        return [
            [p for i in range(n) for p in (self.weights[g * n + i], self.biases[g * n + i])]
            for g in range(len(self.groups))
        ]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[0] != self.members or x.shape[2] != self.sizes[0]:
            raise ValueError(f"input must be (members={self.members}, batch, {self.sizes[0]}), got {tuple(x.shape)}")
        h = x
        for step in self._plan:
            if isinstance(step, tuple):
                w, b = self.layer(step[1])
                h = torch.baddbmm(b, h, w)  # h W + b: (K, B, n_in) @ (K, n_in, n_out) -> (K, B, n_out)
            else:
                h = step(h)
        return h

    def extra_repr(self) -> str:
        return f"sizes={list(self.sizes)}, members={self.members}, groups={self.groups}"


def clip_grad_norm_per_member_(parameters: Sequence[Tensor], max_norm: float, eps: float = 1e-6) -> Tensor:
    r"""Clip each member's gradient to norm `max_norm` on its own.

    The parameters are tensors whose first dimension is the member (K, ...), the same K members in
    each (one group of an `EnsembleMLP`); for member k with gradient
    $g^{(k)}$ (all its slices concatenated), $g^{(k)} \leftarrow g^{(k)} \min\big(1, c / (\lVert g^{(k)}
    \rVert + \epsilon)\big)$, which is `dlterms.optim.clip_grad_norm_` applied to member k alone.
    Returns the K norms before clipping.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        raise ValueError("no parameter has a gradient; call backward() first")
    # ||g^(k)||^2 = sum over tensors of the squared norm of each tensor's slice k
    sq = torch.stack([g.detach().reshape(g.shape[0], -1).pow(2).sum(1) for g in grads]).sum(0)  # (K,)
    norms = sq.sqrt()
    coef = torch.clamp(max_norm / (norms + eps), max=1.0)  # min(1, c / (||g^(k)|| + eps)), (K,)
    for g in grads:
        g.detach().mul_(coef.view(-1, *([1] * (g.dim() - 1))))
    return norms
