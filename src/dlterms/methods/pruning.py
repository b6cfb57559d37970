r"""Model pruning: magnitude (unstructured) pruning with masks, and structured neuron pruning.

Unstructured magnitude pruning (Han et al., "Learning both Weights and Connections for Efficient
Neural Networks", NeurIPS 2015): keep a binary mask $M$ per weight matrix and zero the weights of
smallest magnitude. With a global threshold $\tau$ chosen so that a fraction $p$ of all prunable
weights fall below it,

$$M_{ij} = \mathbb{1}\big[\,|W_{ij}| > \tau\,\big], \qquad W \leftarrow M \odot W$$

and fine-tuning continues with the mask re-applied after every optimizer step, so pruned weights
stay zero. Pruning in several rounds (prune, fine-tune, prune more) loses less accuracy than one cut.

Structured pruning (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017, here for neurons):
score hidden unit $j$ of layer $l$ by the L2 norm of its incoming weights $\lVert W^{(l)}_{j,:}\rVert_2$,
drop the lowest-scoring units, and delete row $j$ of $W^{(l)}$, entry $j$ of $b^{(l)}$ and column $j$
of $W^{(l+1)}$. The result is a smaller dense network, faster on any hardware, unlike a sparse mask.
"""

from __future__ import annotations

import torch
from torch import nn

from dlterms.training import Callback

__all__ = [
    "prunable_weights",
    "magnitude_masks",
    "apply_masks",
    "sparsity",
    "MaskCallback",
    "prune_neurons",
    "neuron_scores",
]


def _linears(model: nn.Module) -> list[nn.Module]:
    return [
        m
        for m in model.modules()
        if hasattr(m, "weight")
        and isinstance(m.weight, torch.Tensor)
        and m.weight.dim() == 2
        and type(m).__name__ == "Linear"
    ]


def prunable_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight matrices of every Linear layer, by parameter name (biases are not pruned)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(m.weight)]: m.weight for m in _linears(model)}


def _check_amount(amount: float) -> None:
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")


def magnitude_masks(model: nn.Module, amount: float, scope: str = "global") -> dict[str, torch.Tensor]:
    """Masks that zero the fraction `amount` of smallest-|w| weights, over all layers together
    (`scope="global"`) or in each layer separately (`"layer"`). Already-zero weights count as pruned."""
    _check_amount(amount)
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    weights = prunable_weights(model)
    if not weights:
        raise ValueError("the model has no Linear weight matrices to prune")

    def keep_mask(mags: torch.Tensor, k: int) -> torch.Tensor:
        mask = torch.ones(mags.numel(), dtype=torch.bool, device=mags.device)
        if k > 0:
            mask[torch.topk(mags.flatten(), k, largest=False).indices] = False  # the k smallest go
        return mask

    if scope == "layer":
        return {n: keep_mask(w.detach().abs(), round(amount * w.numel())).view_as(w) for n, w in weights.items()}
    flat = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    mask = keep_mask(flat, round(amount * flat.numel()))
    out, i = {}, 0
    for n, w in weights.items():
        out[n] = mask[i : i + w.numel()].view_as(w)
        i += w.numel()
    return out


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """W <- M * W for every masked parameter."""
    params = dict(model.named_parameters())
    for n, m in masks.items():
        params[n].mul_(m.to(params[n].dtype))


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero entries among the prunable weights."""
    weights = prunable_weights(model)
    total = sum(w.numel() for w in weights.values())
    return sum(int((w == 0).sum()) for w in weights.values()) / total


class MaskCallback(Callback):
    """Keeps pruned weights at zero during fine-tuning with `dlterms.training.fit`."""

    def __init__(self, masks: dict[str, torch.Tensor]):
        self.masks = masks

    def on_train_begin(self, state) -> None:
        apply_masks(state.model, self.masks)

    def on_batch_end(self, state) -> None:
        apply_masks(state.model, self.masks)


def neuron_scores(weight: torch.Tensor) -> torch.Tensor:
    """L2 norm of each output unit's incoming weights, ||W_j,:||_2; (out_features,)."""
    return weight.detach().norm(dim=1)


@torch.no_grad()
def prune_neurons(linears: list[nn.Module], amount: float, make_linear=None) -> list[nn.Module]:
    """Structured pruning of a chain of Linear layers (activations between them are element-wise).

    Removes the fraction `amount` of units of every hidden layer (the outputs of all but the last
    layer), scored by `neuron_scores`, and returns new, smaller Linear layers with the kept weights.
    `make_linear(in, out)` builds a layer (default: `dlterms.nn.Linear`).
    """
    _check_amount(amount)
    if len(linears) < 2:
        raise ValueError(f"need at least two chained Linear layers to remove hidden units, got {len(linears)}")
    if make_linear is None:
        from dlterms.nn import Linear as make_linear  # noqa: N813
    keep_in = torch.arange(linears[0].weight.shape[1])
    out = []
    for i, lin in enumerate(linears):
        W = lin.weight[:, keep_in]  # drop the columns of units removed from the previous layer
        b = lin.bias
        if i < len(linears) - 1:
            n_keep = max(1, W.shape[0] - round(amount * W.shape[0]))
            keep_out = torch.sort(torch.topk(neuron_scores(lin.weight), n_keep).indices).values
        else:
            keep_out = torch.arange(W.shape[0])
        new = make_linear(W.shape[1], len(keep_out), bias=b is not None)
        new.weight.copy_(W[keep_out])
        if b is not None:
            new.bias.copy_(b[keep_out])
        out.append(new)
        keep_in = keep_out
    return out
